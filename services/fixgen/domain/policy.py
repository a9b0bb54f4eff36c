"""The policy limits a model-written patch must keep before anything of it runs (pure; docs/fixgen.md).

`policy.max_files`, `policy.max_diff_lines` and `policy.protected_paths` (the same globs review uses) bound the
whole change, the regression test included. A patch over a limit is refused, with the reason, and the next attempt
is told why. Workflow files, dependency manifests or new network calls are not refused here: they are review's to
gate (HIGH risk), unless the policy protects their paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pagerpatch.git.paths import is_protected

__all__ = ["PatchPolicy", "policy_refusal"]

_SHOWN = 5


@dataclass(frozen=True)
class PatchPolicy:
    """The limits of `settings.policy` that bind a patch (defaults as in the settings)."""

    protected_paths: tuple[str, ...] = ()
    max_diff_lines: int = 400
    max_files: int = 10


def policy_refusal(files: Sequence[str], added: int, removed: int, policy: PatchPolicy) -> str | None:
    """Why the change may not be made under `policy` (protected paths first), or None when it keeps the limits."""
    protected = [path for path in files if is_protected(path, policy.protected_paths)]
    if protected:
        shown = ", ".join(protected[:_SHOWN])
        return f"the patch touches protected paths ({shown}); policy.protected_paths forbids a fix there"
    if len(files) > policy.max_files:
        return f"the patch changes {len(files)} files, over policy.max_files ({policy.max_files})"
    if added + removed > policy.max_diff_lines:
        return (
            f"the patch changes {added + removed} lines (+{added} -{removed}), over policy.max_diff_lines "
            f"({policy.max_diff_lines})"
        )
    return None

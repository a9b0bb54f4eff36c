"""Every scenario of `pagerpatch eval fixes`, in the order the report lists them, and choosing some by name.

The scenarios are data, one file each in scenarios/ (read by spec.py, built by history.build). (a)-(d) are about
*which* commit is blamed: a newer docstring-only, reformatting or test-only commit must not win over the commit that
changed the logic, and a src-layout package with a build step must be tested as it is in the worktree. (e)-(i) are
about *whether* a revert is a fix: one that conflicts, one that breaks later code, a test already failing at HEAD
(the baseline), a bug only the alert's captured variables reproduce, and one nothing proves.
"""

from __future__ import annotations

from collections.abc import Sequence

from pagerpatch.ops.fixes_eval.history import Scenario
from pagerpatch.ops.fixes_eval.spec import load_scenarios

__all__ = ["SCENARIOS", "UnknownScenario", "select"]

SCENARIOS: tuple[Scenario, ...] = load_scenarios()  # by letter: a..i


class UnknownScenario(ValueError):
    """A scenario name (or letter) that none has."""


def select(names: Sequence[str]) -> tuple[Scenario, ...]:
    """The scenarios named (by name or by letter, in catalog order, each once); all of them when none is named."""
    if not names:
        return SCENARIOS
    wanted = {n.strip().lower() for n in names}
    known = {s.name for s in SCENARIOS} | {s.letter for s in SCENARIOS}
    unknown = sorted(wanted - known)
    if unknown:
        listing = ", ".join(f"{s.letter}={s.name}" for s in SCENARIOS)
        raise UnknownScenario(f"unknown scenario(s): {', '.join(unknown)}; known: {listing}")
    return tuple(s for s in SCENARIOS if s.name in wanted or s.letter in wanted)

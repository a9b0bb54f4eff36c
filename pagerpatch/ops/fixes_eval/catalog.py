"""Every shipped scenario of `pagerpatch eval fixes`, in the order the report lists them; datasets; choosing some.

The scenarios are data, one file each in scenarios/ (read by spec.py, built by history.build). (a)-(d) are about
*which* commit is blamed: a newer docstring-only, reformatting or test-only commit must not win over the commit that
changed the logic, and a src-layout package with a build step must be tested as it is in the worktree. (e)-(i) are
about *whether* a revert is a fix: one that conflicts, one that breaks later code, a test already failing at HEAD
(the baseline), a bug only the alert's captured variables reproduce, and one nothing proves. (j)-(k) are JavaScript
(node) repositories tested with `node --test`: a TypeError on undefined behind a comment-only follow-up, and a
RangeError behind a newer test-only commit, both proved by reverting. `--dataset DIR` adds (or substitutes) the
scenario files of a folder of one's own (docs/eval-fixes.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pagerpatch.ops.fixes_eval.history import Scenario
from pagerpatch.ops.fixes_eval.spec import ScenarioFileError, load_dataset, load_scenarios

__all__ = ["SCENARIOS", "UnknownScenario", "combined", "datasets", "select"]

SCENARIOS: tuple[Scenario, ...] = load_scenarios()  # by letter: a..k


class UnknownScenario(ValueError):
    """A scenario name (or letter) that none has."""


def datasets(folders: Iterable[Path], *, shipped: bool) -> tuple[Scenario, ...]:
    """The scenarios of each `--dataset` folder, after the shipped ones when `shipped`; raises ScenarioFileError
    for a malformed file, an empty folder, or two scenarios with one name (or letter)."""
    groups = [SCENARIOS] if shipped else []
    groups += [load_dataset(folder) for folder in folders]
    return combined(*groups)


def combined(*groups: Sequence[Scenario]) -> tuple[Scenario, ...]:
    """The groups one after the other, each scenario's name (and letter, when it has one) used once."""
    out: list[Scenario] = []
    for s in (s for group in groups for s in group):
        for field, value in (("name", s.name), ("letter", s.letter)):
            if value and any(getattr(seen, field) == value for seen in out):
                raise ScenarioFileError(f"{s.name}: {field}: {value!r} is used by another scenario of the run")
        out.append(s)
    return tuple(out)


def select(names: Sequence[str], scenarios: Sequence[Scenario] = SCENARIOS) -> tuple[Scenario, ...]:
    """The scenarios named (by name or by letter, in the given order, each once); all of them when none is named."""
    if not names:
        return tuple(scenarios)
    wanted = {n.strip().lower() for n in names}
    known = {s.name for s in scenarios} | {s.letter for s in scenarios if s.letter}
    unknown = sorted(wanted - known)
    if unknown:
        listing = ", ".join(f"{s.letter}={s.name}" if s.letter else s.name for s in scenarios)
        raise UnknownScenario(f"unknown scenario(s): {', '.join(unknown)}; known: {listing}")
    return tuple(s for s in scenarios if s.name in wanted or (s.letter and s.letter in wanted))

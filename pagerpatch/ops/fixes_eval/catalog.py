"""Every scenario of `pagerpatch eval fixes`, in the order the report lists them, and choosing some by name."""

from __future__ import annotations

from collections.abc import Sequence

from pagerpatch.ops.fixes_eval.blame_scenarios import DOCSTRING, REFORMAT, SRC_LAYOUT, TEST_ONLY
from pagerpatch.ops.fixes_eval.history import Scenario
from pagerpatch.ops.fixes_eval.proof_scenarios import BASELINE, BREAKS_LATER, CONFLICT, REPRODUCTION, UNCOVERED

__all__ = ["SCENARIOS", "UnknownScenario", "select"]

SCENARIOS: tuple[Scenario, ...] = (
    DOCSTRING, REFORMAT, TEST_ONLY, SRC_LAYOUT, CONFLICT, BREAKS_LATER, BASELINE, REPRODUCTION, UNCOVERED,
)  # fmt: skip


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

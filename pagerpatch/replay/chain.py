"""The replay chain: the recorded alerts into triage, then each stage's output events into the next stage.

Which events a stage takes is what its durable consumers read (`schemas.streams`), so the chain needs no
knowledge of any stage beyond its name. The first stage gets every recorded alert of the incident; each later
stage the first event it consumes among the previous stage's outputs (one incident, one of each). A stage that
gets nothing is *not reached*, and neither is any stage after it; so are the stages after one that failed (its
error is its note).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pagerpatch.replay.model import ReplayInput, ReplayStep, StageOutcome
from pagerpatch.settings import RepoConfig, Settings
from schemas import streams
from schemas.envelope import Event

ENTRY_POINT_GROUP = "pagerpatch.replay"
STAGES: tuple[str, ...] = ("triage", "diagnosis", "fixgen", "review")


def consumed_subjects(stage: str) -> frozenset[str]:
    """The subjects `stage`'s durable consumers read."""
    return frozenset(c.subject for c in streams.consumers_of(stage))


def load_steps(
    report: Callable[[str], None], found: Callable[[], Sequence[EntryPoint]] | None = None
) -> dict[str, ReplayStep]:
    """The installed replay steps by stage name; one that cannot be loaded is reported and left out (its stage is
    then not replayed, and says so). `found` replaces the installed entry points (tests)."""
    eps = found() if found is not None else list(entry_points(group=ENTRY_POINT_GROUP))
    steps: dict[str, ReplayStep] = {}
    for ep in eps:
        try:
            step = ep.load()
        except Exception as exc:  # someone else's package failing at import: report it, replay what can be
            report(f"replay step {ep.name!r} ({ep.value}) could not be loaded: {type(exc).__name__}: {exc}")
            continue
        if not callable(step):
            report(f"replay step {ep.name!r} ({ep.value}) is not callable; skipped")
            continue
        steps[ep.name] = step
    return steps


def inputs_for(stage: str, previous: Sequence[Event[Any]], *, first: bool) -> tuple[Event[Any], ...]:
    """What `stage` takes from the previous stage's outputs (all of them for the first stage)."""
    wanted = consumed_subjects(stage)
    taken = tuple(e for e in previous if e.subject in wanted)
    return taken if first else taken[:1]


async def run_chain(
    steps: Mapping[str, ReplayStep],
    alerts: Sequence[Event[Any]],
    settings: Settings,
    *,
    incident_id: uuid.UUID,
    repos: Sequence[RepoConfig],
    workdir: Path,
    stages: Sequence[str] = STAGES,
) -> list[StageOutcome]:
    """Every stage's outcome, in order; each stage works in `workdir/<stage>`."""
    outcomes: list[StageOutcome] = []
    events: Sequence[Event[Any]] = alerts
    stopped: str | None = None
    for i, stage in enumerate(stages):
        if stopped is not None:
            outcomes.append(StageOutcome(stage, notes=(stopped,), ran=False))
            continue
        given = inputs_for(stage, events, first=i == 0)
        step = steps.get(stage)
        if not given:
            took = ", ".join(sorted(s.removeprefix("pagerpatch.") for s in consumed_subjects(stage))) or "nothing"
            stopped = (
                f"not reached: {stages[i - 1] if i else 'the recording'} produced nothing {stage} consumes ({took})"
            )
            outcomes.append(StageOutcome(stage, notes=(stopped,), ran=False))
            continue
        if step is None:
            stopped = f"not replayed: no replay step for {stage} is installed (entry point group {ENTRY_POINT_GROUP})"
            outcomes.append(StageOutcome(stage, notes=(stopped,), ran=False))
            continue
        folder = workdir / stage
        folder.mkdir(parents=True, exist_ok=True)
        try:
            outcome = await step(ReplayInput(incident_id, tuple(given), tuple(repos), folder), settings)
        except Exception as exc:  # the stage's own failure (an unknown repository, git down): reported, not raised
            stopped = f"not reached: {stage} failed"
            outcomes.append(StageOutcome(stage, notes=(f"failed: {type(exc).__name__}: {exc}",)))
            continue
        outcomes.append(outcome)
        events = outcome.outputs
    return outcomes

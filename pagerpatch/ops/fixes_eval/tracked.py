"""One scenario's alert as the evaluation follows it through the pipeline (in-process or on a stack), and the
pre-bug packages made importable by pagerpatch's own processes while it runs (the leak check of scenario d)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pagerpatch.ops.fixes_eval.history import BuiltScenario
from pagerpatch.ops.fixes_eval.outcome import PipelineOutcome, read_outcome
from schemas.envelope import Event

__all__ = ["Tracked", "importable"]


@dataclass
class Tracked:
    """One scenario's alert and what the pipeline did with it."""

    built: BuiltScenario
    alert: uuid.UUID | None
    posted_at: float
    problem: str = ""
    incident: uuid.UUID | None = None
    state: str = ""
    done_at: float | None = None
    finished_at: float | None = None
    events: list[Event[Any]] = field(default_factory=list)  # the incident's

    def outcome(self) -> PipelineOutcome:
        if self.incident is None:
            return PipelineOutcome(None, self.state, detail=self.problem or "no incident")
        return read_outcome(self.events, self.state, self.incident)


@contextlib.contextmanager
def importable(folder: Path | None) -> Iterator[None]:
    """`folder` on the PYTHONPATH of the processes started meanwhile (the stack's services, or the sandboxes and
    git the in-process stages start), then as it was."""
    if folder is None:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before

"""The neutral types of a replay: what one stage's replay step is given, and what it answers.

A step (`services/<stage>/replay.py`, entry point group `pagerpatch.replay`) is

    async def replay(inputs: ReplayInput, settings: Settings) -> StageOutcome

It runs the stage's use case on in-memory ports and throw-away worktrees under `inputs.workdir`: it publishes
nothing, writes no live row and calls nothing outside (no GitHub, Slack or Linear; only the model, when one is
configured, and the repository's tests in the sandbox). Its answer holds the events the stage *would* have
published, which the chain hands to the next stage.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pagerpatch.llm import LlmRuntime, ToolRegistry
from pagerpatch.llm.ledger import MemoryLedger
from pagerpatch.settings import RepoConfig, Settings
from schemas.envelope import Event


@dataclass(frozen=True)
class ReplayInput:
    """One stage's inputs in a replay: the events it consumes (in order), the repositories it may read, and a
    folder of its own for clones and worktrees (removed after the replay)."""

    incident_id: uuid.UUID
    events: tuple[Event[Any], ...]
    repos: tuple[RepoConfig, ...]
    workdir: Path

    def repo(self, name: str) -> RepoConfig | None:
        return next((r for r in self.repos if r.name == name), None)


@dataclass(frozen=True)
class StageOutcome:
    """What a stage did in the replay: the events it would have published, what its model calls cost, and notes
    (why it skipped something, what it could not do)."""

    stage: str
    outputs: tuple[Event[Any], ...] = ()
    cost_usd: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    ran: bool = True  # False: the stage was not reached (or has no replay step installed)


class ReplayStep(Protocol):
    """A stage's replay step (see the module docstring)."""

    def __call__(self, inputs: ReplayInput, settings: Settings) -> Awaitable[StageOutcome]: ...  # pragma: no cover


def repo_for_service(repos: Sequence[RepoConfig], settings: Settings, service: str) -> str | None:
    """The repository that serves `service` among `repos`: its service-catalog entry's, else the first whose
    `services` lists it (the registry's rule, `pagerpatch.git.repos.for_service`, on a snapshot)."""
    entry = settings.service_catalog.get(service)
    if entry and entry.repo:
        return entry.repo if any(r.name == entry.repo for r in repos) else None
    return next((r.name for r in repos if service in r.services), None)


def offline_runtime(settings: Settings, registry: ToolRegistry | None = None) -> LlmRuntime:
    """The agent runtime as a replay uses it: the same models and governance, its ledger in memory (a replay's
    calls are counted by `spent`, never written to the live ledger, and budgets start from nothing)."""
    return LlmRuntime.create(settings, None, registry)


def spent(*runtimes: LlmRuntime | None) -> float:
    """What the model calls through these runtimes cost (their in-memory ledgers)."""
    total = 0.0
    for runtime in runtimes:
        if runtime is not None and isinstance(runtime.ledger, MemoryLedger):
            total += sum(c.cost_usd for c in runtime.ledger.calls)
    return total

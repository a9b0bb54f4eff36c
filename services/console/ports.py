"""What the console needs from the world: the store (incidents, ledger, checkpoints, dead letters, audit), the bus
(consumer state, a live tail, publishing a decision) and where `pagerpatch up` runs. Rows it reads are plain values."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from pagerpatch.incidents import IncidentView
from schemas.envelope import Event
from services.console.domain import BreakerReading, ConsumerLag, CostRow, IncidentFilter


@dataclass(frozen=True)
class IncidentRow:
    """One line of the incidents page."""

    id: uuid.UUID
    state: str
    severity: str
    service: str
    team: str | None
    title: str
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    strategy: str | None = None  # the fix's strategy, else the diagnosis's
    pr_url: str | None = None
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class LlmCall:
    at: datetime
    agent: str
    step: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: Decimal
    latency_ms: int
    outcome: str


@dataclass(frozen=True)
class ApprovalRow:
    status: str  # pending | approved | rejected
    request_event_id: uuid.UUID
    decided_by: str | None = None
    reason: str | None = None
    requested_at: datetime | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class IncidentRecord:
    """Everything the incident page shows, read in one go (the same reads as `pagerpatch incidents show`)."""

    incident: IncidentView
    team: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    pr: dict[str, Any] | None = None
    triage: list[str] = field(default_factory=list)
    outputs: list[Event[Any]] = field(default_factory=list)
    approval: ApprovalRow | None = None
    llm_calls: list[LlmCall] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class StageActivity:
    """A stage's last checkpoints: its heartbeat as the store sees it."""

    stage: str
    last_started: datetime | None
    last_finished: datetime | None
    in_flight: int  # checkpoints started and not finished
    oldest_in_flight: datetime | None
    dead: int


@dataclass(frozen=True)
class DeadLetterCount:
    consumer: str
    total: int
    waiting: int  # not redriven yet


@dataclass(frozen=True)
class TailedEvent:
    seq: int
    subject: str
    data: bytes


@dataclass(frozen=True)
class UpInfo:
    """A live `pagerpatch up` on this state folder (its runtime.json) and whether its ingest answers /readyz."""

    pid: int | None
    ingest_url: str
    ingest_ready: bool | None  # None: not probed (no URL)


class ConsoleStore(Protocol):
    async def incidents(self, f: IncidentFilter, limit: int) -> list[IncidentRow]: ...

    async def choices(self) -> dict[str, list[str]]:
        """The states, services and teams present, for the filter menus."""
        ...

    async def incident(self, ref: str) -> IncidentRecord | None:
        """By id or unambiguous prefix."""
        ...

    async def cost_rows(self, days: int) -> list[CostRow]: ...

    async def stage_activity(self) -> list[StageActivity]: ...

    async def dead_letters(self) -> list[DeadLetterCount]: ...

    async def audit(self, *, actor: str, action: str, incident_id: uuid.UUID, details: dict[str, Any]) -> None: ...


class EventBus(Protocol):
    async def consumer_lag(self) -> list[ConsumerLag]: ...

    async def publish(self, event: Event[Any]) -> bool:
        """Publish with the event id as Nats-Msg-Id; True when the stream already had it (a duplicate)."""
        ...

    def tail(self, subject: str, backlog: int, keepalive_s: float) -> AsyncIterator[TailedEvent | None]:
        """Events on `subject` from an ephemeral consumer (the last `backlog` first); None every `keepalive_s`
        without one (the stream stays open)."""
        ...


class Runtime(Protocol):
    async def up(self) -> UpInfo | None: ...


class BreakerSource(Protocol):
    def endpoints(self) -> dict[str, str]:
        """The /metrics URLs read, by service ({}: none configured)."""
        ...

    async def breakers(self) -> list[BreakerReading]:
        """Every breaker the services report (a reading with `problem` for an endpoint that did not answer)."""
        ...

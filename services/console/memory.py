"""In-memory console ports with the real ones' semantics (the stream drops an event id it already has), for unit
tests of the use cases and templates."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import encode
from schemas.envelope import Event
from services.console.domain import BreakerReading, ConsumerLag, CostRow, IncidentFilter
from services.console.ports import (
    DeadLetterCount,
    IncidentRecord,
    IncidentRow,
    StageActivity,
    TailedEvent,
    UpInfo,
)


@dataclass
class MemoryConsoleStore:
    rows: list[IncidentRow] = field(default_factory=list)
    records: dict[uuid.UUID, IncidentRecord] = field(default_factory=dict)
    costs: list[CostRow] = field(default_factory=list)
    stages: list[StageActivity] = field(default_factory=list)
    dead: list[DeadLetterCount] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)

    async def incidents(self, f: IncidentFilter, limit: int) -> list[IncidentRow]:
        keep = [
            r for r in self.rows
            if (f.state is None or r.state == f.state) and (f.service is None or r.service == f.service)
            and (f.team is None or r.team == f.team)
        ]  # fmt: skip
        return sorted(keep, key=lambda r: r.opened_at, reverse=True)[:limit]

    async def choices(self) -> dict[str, list[str]]:
        return {
            "state": sorted({r.state for r in self.rows}),
            "service": sorted({r.service for r in self.rows}),
            "team": sorted({r.team for r in self.rows if r.team}),
        }

    async def incident(self, ref: str) -> IncidentRecord | None:
        found = [rec for key, rec in self.records.items() if str(key) == ref or str(key).startswith(ref.lower())]
        return found[0] if len(found) == 1 else None

    async def cost_rows(self, days: int) -> list[CostRow]:
        return list(self.costs)

    async def stage_activity(self) -> list[StageActivity]:
        return list(self.stages)

    async def dead_letters(self) -> list[DeadLetterCount]:
        return list(self.dead)

    async def audit(self, *, actor: str, action: str, incident_id: uuid.UUID, details: dict[str, Any]) -> None:
        self.audits.append({"actor": actor, "action": action, "incident_id": incident_id, "details": details})


@dataclass
class MemoryEventBus:
    """The events stream as a list; `tail` replays the last `backlog` matching events, then waits for new ones."""

    published: list[Event[Any]] = field(default_factory=list)
    lags: list[ConsumerLag] = field(default_factory=list)
    down: bool = False
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    async def consumer_lag(self) -> list[ConsumerLag]:
        if self.down:
            raise ConnectionError("memory bus: unavailable")
        return list(self.lags)

    async def publish(self, event: Event[Any]) -> bool:
        if any(e.event_id == event.event_id for e in self.published):
            return True
        self.published.append(event)
        self._new.set()
        return False

    async def tail(self, subject: str, backlog: int, keepalive_s: float) -> AsyncIterator[TailedEvent | None]:
        prefix = subject.removesuffix(">")

        def matching(start: int) -> list[tuple[int, Event[Any]]]:
            return [(i + 1, e) for i, e in enumerate(self.published[start:], start) if e.subject.startswith(prefix)]

        seen = len(self.published)
        for seq, e in matching(0)[-backlog:] if backlog else []:
            yield TailedEvent(seq, e.subject, encode(e))
        while True:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), timeout=keepalive_s)
            except TimeoutError:
                yield None
                continue
            for seq, e in matching(seen):
                yield TailedEvent(seq, e.subject, encode(e))
            seen = len(self.published)


@dataclass
class MemoryRuntime:
    info: UpInfo | None = None

    async def up(self) -> UpInfo | None:
        return self.info


@dataclass
class MemoryBreakers:
    urls: dict[str, str] = field(default_factory=dict)
    readings: list[BreakerReading] = field(default_factory=list)

    def endpoints(self) -> dict[str, str]:
        return dict(self.urls)

    async def breakers(self) -> list[BreakerReading]:
        return list(self.readings)

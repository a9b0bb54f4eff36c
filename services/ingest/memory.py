"""In-memory ingest ports with the real ones' semantics (first claim wins, the stream drops doubles), and a switch
that turns each into an outage; for unit tests and evals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pagerpatch.kernel.errors import Transient
from schemas.envelope import Event
from services.ingest.ports import Claim


@dataclass
class MemoryDeliveryStore:
    """Delivery ids by (source, delivery id), like `PgDeliveryLedger`: the first claim's event id stays, a delivery
    is published only once marked, `attempts` counts claims. `down` makes every call an outage."""

    rows: dict[tuple[str, str], Claim] = field(default_factory=dict)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise Transient("memory delivery store: unavailable")

    async def claim(self, source: str, delivery_id: str, event_id: uuid.UUID) -> Claim:
        self._check()
        key = (source, delivery_id)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        return self.rows.setdefault(key, Claim(event_id, published=False))

    async def mark_published(self, source: str, delivery_id: str) -> None:
        self._check()
        key = (source, delivery_id)
        self.rows[key] = Claim(self.rows[key].event_id, published=True)

    async def ready(self) -> None:
        self._check()


@dataclass
class MemoryPublisher:
    """The events stream as a list: an event id already stored is not stored again (the stream's duplicate window,
    here without end). `calls` counts publish attempts that reached the bus; `down` is a bus outage."""

    stored: list[Event[Any]] = field(default_factory=list)
    calls: int = 0
    down: bool = False

    async def publish(self, event: Event[Any]) -> bool:
        if self.down:
            raise Transient("memory bus: unavailable")
        self.calls += 1
        duplicate = any(e.event_id == event.event_id for e in self.stored)
        if not duplicate:
            self.stored.append(event)
        return duplicate

    async def ready(self) -> None:
        if self.down:
            raise Transient("memory bus: unavailable")


@dataclass
class MemorySns:
    """AWS for SNS: certificates by URL, confirmed subscriptions in order. `down` makes both calls outages."""

    certificates: dict[str, bytes] = field(default_factory=dict)
    confirmed: list[str] = field(default_factory=list)
    down: bool = False

    async def certificate(self, url: str) -> bytes:
        if self.down:
            raise Transient("memory sns: unavailable")
        return self.certificates[url]

    async def confirm(self, url: str) -> None:
        if self.down:
            raise Transient("memory sns: unavailable")
        self.confirmed.append(url)

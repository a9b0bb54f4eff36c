"""What the webhook flow needs from the world: a delivery-id ledger, the bus, and AWS for SNS.

Each port raises `pagerpatch.kernel.errors.Transient` when its dependency is out (answered 503 + Retry-After, so the
provider retries); anything else it raises is a bug and surfaces as one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.envelope import Event

__all__ = ["Claim", "DeliveryStore", "Publisher", "SnsGateway"]


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery id's record: the event id its first attempt chose, and whether that attempt's events are stored."""

    event_id: uuid.UUID
    published: bool  # a previous attempt's events are known to be in the stream


class DeliveryStore(Protocol):
    """Delivery ids seen per source, kept longer than the stream's duplicate window (providers retry for days)."""

    async def claim(self, source: str, delivery_id: str, event_id: uuid.UUID) -> Claim:
        """Record the delivery (first claim wins) and return its record."""
        ...  # pragma: no cover

    async def mark_published(self, source: str, delivery_id: str) -> None:
        """Note that the delivery's events are in the stream: a later retry is answered without publishing."""
        ...  # pragma: no cover

    async def ready(self) -> None:
        """Raise when the ledger cannot be reached (the readiness probe)."""
        ...  # pragma: no cover


class Publisher(Protocol):
    """The events stream."""

    async def publish(self, event: Event[Any]) -> bool:
        """Store the event and wait for the stream's acknowledgement; True when the stream had it already."""
        ...  # pragma: no cover

    async def ready(self) -> None:
        """Raise when the bus cannot be reached (the readiness probe)."""
        ...  # pragma: no cover


class SnsGateway(Protocol):
    """AWS SNS over HTTPS, for URLs the SNS provider module already validated."""

    async def certificate(self, url: str) -> bytes:
        """The PEM signing certificate at `url` (may be cached)."""
        ...  # pragma: no cover

    async def confirm(self, url: str) -> None:
        """Confirm a subscription by fetching its SubscribeURL."""
        ...  # pragma: no cover

"""What review needs from the world: a store of approvals (the gate) and the audit log."""

from __future__ import annotations

import uuid
from typing import Literal, Protocol

from schemas.events import FixValidatedPayload, RiskAssessment
from services.review.domain import Approval, AuditEntry


class Approvals(Protocol):
    """The approval gate's store: one approval per incident, decided at most once."""

    async def request(
        self, incident_id: uuid.UUID, *, risk: RiskAssessment, fix: FixValidatedPayload, event_id: uuid.UUID
    ) -> None:
        """Open a pending approval for the incident; a second request for it changes nothing."""
        ...  # pragma: no cover

    async def decide(
        self, incident_id: uuid.UUID, decision: Literal["approve", "reject"], *, by: str, reason: str, audit: AuditEntry
    ) -> tuple[Approval | None, bool]:
        """Apply a decision to the pending approval and write `audit` with it, atomically.

        Returns the approval (None when the incident has none) and whether this call decided it; an approval
        already decided is returned unchanged and `audit` is not written.
        """
        ...  # pragma: no cover


class Audit(Protocol):
    """The append-only audit log."""

    async def record(self, entry: AuditEntry) -> None: ...  # pragma: no cover

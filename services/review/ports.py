"""What review needs from the world: a store of approvals (the gate), the audit log and the model's critique."""

from __future__ import annotations

import uuid
from typing import Literal, Protocol

from schemas.events import FixValidatedPayload, RiskAssessment
from services.review.critique import Critique, Unavailable
from services.review.domain import Approval, AuditEntry


class Approvals(Protocol):
    """The approval gate's store: one approval per incident, decided at most once."""

    async def request(
        self, incident_id: uuid.UUID, *, risk: RiskAssessment, fix: FixValidatedPayload, event_id: uuid.UUID
    ) -> None:
        """Open a pending approval for the incident; a second request for it changes nothing."""
        ...  # pragma: no cover

    async def decide(
        self,
        incident_id: uuid.UUID,
        decision: Literal["approve", "reject"],
        *,
        by: str,
        reason: str,
        audit: AuditEntry,
        channel: str = "cli",
    ) -> tuple[Approval | None, bool]:
        """Apply a decision to the pending approval and write `audit` and its preference pair with it, atomically.

        Returns the approval (None when the incident has none) and whether this call decided it; an approval
        already decided is returned unchanged and neither `audit` nor a preference pair is written.
        """
        ...  # pragma: no cover


class Audit(Protocol):
    """The append-only audit log."""

    async def record(self, entry: AuditEntry) -> None: ...  # pragma: no cover


class Critic(Protocol):
    """The review agent: a structured self-critique of a fix, or why there is none this time."""

    @property
    def enabled(self) -> bool: ...  # pragma: no cover

    async def critique(
        self, fix: FixValidatedPayload, rules: RiskAssessment, *, incident_id: uuid.UUID | None, team: str | None
    ) -> Critique | Unavailable: ...  # pragma: no cover


class NoCritic:
    """No model configured: the rules alone decide (and nothing is noted: there was nothing to ask)."""

    enabled = False

    async def critique(
        self, fix: FixValidatedPayload, rules: RiskAssessment, *, incident_id: uuid.UUID | None, team: str | None
    ) -> Critique | Unavailable:
        return Unavailable("no model is configured")

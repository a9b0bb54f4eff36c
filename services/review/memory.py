"""In-memory review ports with the Postgres adapters' semantics (and a scripted review agent), for unit tests and
evals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Literal

from schemas.events import FixValidatedPayload, RiskAssessment
from services.review.critique import Critique, Unavailable
from services.review.domain import Approval, AuditEntry, PreferencePair, preference_pair, status_after


@dataclass
class MemoryAudit:
    """The audit log as a list, in the order lines were written."""

    entries: list[AuditEntry] = field(default_factory=list)

    async def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    def actions(self, incident_id: uuid.UUID) -> list[str]:
        return [e.action for e in self.entries if e.incident_id == incident_id]


@dataclass
class MemoryApprovals:
    """Approvals by incident; a decision writes its audit line to `audit` only when it settles the approval."""

    audit: MemoryAudit = field(default_factory=MemoryAudit)
    approvals: dict[uuid.UUID, Approval] = field(default_factory=dict)
    request_events: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    preferences: list[PreferencePair] = field(default_factory=list)

    async def request(
        self, incident_id: uuid.UUID, *, risk: RiskAssessment, fix: FixValidatedPayload, event_id: uuid.UUID
    ) -> None:
        if incident_id in self.approvals:  # ON CONFLICT (incident_id) DO NOTHING
            return
        # Stored as JSON documents, as the jsonb columns hold them, so reading back goes through validation.
        self.approvals[incident_id] = Approval(
            incident_id, "pending", risk.model_dump(mode="json"), fix.model_dump(mode="json"), None, None
        )
        self.request_events[incident_id] = event_id

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
        approval = self.approvals.get(incident_id)
        if approval is None:
            return None, False
        if approval.status != "pending":
            return approval, False
        decided = replace(approval, status=status_after(decision), decided_by=by, reason=reason)
        self.approvals[incident_id] = decided
        await self.audit.record(audit)
        self.preferences.append(preference_pair(decided, channel))
        return decided, True


@dataclass
class ScriptedCritic:
    """A review agent that answers from a list, in order (an `Unavailable` entry stands for a model that is down);
    what it was asked is kept."""

    answers: list[Critique | Unavailable] = field(default_factory=list)
    asked: list[tuple[FixValidatedPayload, RiskAssessment]] = field(default_factory=list)
    enabled: bool = True

    async def critique(
        self, fix: FixValidatedPayload, rules: RiskAssessment, *, incident_id: uuid.UUID | None, team: str | None
    ) -> Critique | Unavailable:
        self.asked.append((fix, rules))
        return self.answers.pop(0) if self.answers else Unavailable("no scripted answer left")

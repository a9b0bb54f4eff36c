"""Review's use case: score a validated fix, let it through or hold it at the approval gate, and settle the gate
with the first decision that counts. Runs on the Postgres store in the service and on memory ports in tests."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from pagerpatch.kernel.errors import Poison
from schemas.envelope import Event
from schemas.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalRequestedPayload,
    FixApproved,
    FixApprovedPayload,
    FixRejected,
    FixRejectedPayload,
    FixValidated,
    FixValidatedPayload,
    RiskAssessment,
)
from services.review import critique, domain
from services.review.ports import Approvals, Audit, Critic, NoCritic

log = logging.getLogger(__name__)
STAGE = "review"


@dataclass(frozen=True)
class Review:
    """The risk policy and the ports review works over (what the service's handlers get as their deps)."""

    policy: domain.RiskPolicy
    approvals: Approvals
    audit: Audit
    critic: Critic = field(default_factory=NoCritic)

    async def on_fix(self, event: FixValidated) -> list[Event[Any]]:
        """Approve a proved, low-risk fix by policy; otherwise store a pending approval and ask for a decision.

        The rules' risk is the floor; with a model, its critique may raise it (never lower it) and its findings
        travel with the risk to the pull request."""
        fix = event.payload
        facts = domain.facts_of(fix)
        risk = domain.assess(facts, self.policy)
        if self.critic.enabled:
            answer = await self.critic.critique(fix, risk, incident_id=event.incident_id, team=event.team)
            risk = critique.reviewed(risk, answer)
        if not domain.must_wait(facts, risk, self.policy):
            approved = FixApprovedPayload(risk=risk, approved_by="policy", fix=fix)
            return [event.derive(FixApproved, approved, stage=STAGE)]
        # Only a fix that must wait needs an incident to wait under; one approved by policy goes on without.
        if event.incident_id is None:
            raise Poison("fix.validated without incident_id cannot wait for approval")
        requested = event.derive(
            ApprovalRequested,
            ApprovalRequestedPayload(
                risk=risk, repo=fix.repo, summary=domain.approval_summary(fix), files_changed=list(fix.files_changed)
            ),
            stage=STAGE,
        )
        await self.approvals.request(event.incident_id, risk=risk, fix=fix, event_id=requested.event_id)
        return [requested]

    async def on_decision(self, event: ApprovalDecided, incident_id: uuid.UUID) -> list[Event[Any]]:
        """Settle the incident's approval: refused and late decisions are audited and change nothing."""
        d = event.payload
        refused = domain.refusal(d, self.policy)
        if refused is not None:
            log.warning("approval.decided for %s refused: %s", incident_id, refused)
            await self.audit.record(domain.refused_entry(incident_id, d, refused))
            return []
        approval, decided_now = await self.approvals.decide(
            incident_id,
            d.decision,
            by=d.decided_by,
            reason=d.reason,
            audit=domain.decided_entry(incident_id, d),
            channel=d.channel,
        )
        if approval is None:
            raise Poison(f"incident {incident_id} has no pending approval")
        if not decided_now:
            log.warning(
                "approval for %s was already %s by %s; ignoring %s by %s",
                incident_id,
                approval.status,
                approval.decided_by,
                d.decision,
                d.decided_by,
            )
            await self.audit.record(domain.ignored_entry(incident_id, d, approval))
            return []
        risk = RiskAssessment.model_validate(approval.risk)
        if approval.status == "approved":
            fix = FixValidatedPayload.model_validate(approval.fix)
            payload = FixApprovedPayload(risk=risk, approved_by=d.decided_by, reason=d.reason, fix=fix)
            return [event.derive(FixApproved, payload, stage=STAGE)]
        rejected = FixRejectedPayload(risk=risk, rejected_by=d.decided_by, reason=d.reason)
        return [event.derive(FixRejected, rejected, stage=STAGE)]

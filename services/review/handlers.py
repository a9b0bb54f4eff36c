"""Review handlers: risk-score validated fixes; HIGH/CRITICAL wait at the approval gate."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pagerpatch.kernel import store
from pagerpatch.kernel.errors import Poison
from pagerpatch.kernel.runtime import Service, StageContext
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
from services.review import adapters, logic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewDeps:
    policy: logic.RiskPolicy
    pool: asyncpg.Pool


service: Service[ReviewDeps] = Service("review")


@service.handler("review", FixValidated)
async def on_fix(event: FixValidated, ctx: StageContext[ReviewDeps]) -> Sequence[Event[Any]]:
    fix = event.payload
    facts = logic.FixFacts(
        files=tuple(fix.files_changed),
        lines_added=fix.lines_added,
        lines_removed=fix.lines_removed,
        tests_passed=fix.tests.passed,
    )
    risk = logic.assess(facts, ctx.deps.policy)
    if not logic.needs_approval(risk, ctx.deps.policy):
        return [event.derive(FixApproved, FixApprovedPayload(risk=risk, approved_by="policy", fix=fix), stage="review")]
    if event.incident_id is None:
        raise Poison("fix.validated without incident_id cannot wait for approval")
    out = event.derive(
        ApprovalRequested,
        ApprovalRequestedPayload(
            risk=risk,
            repo=fix.repo,
            summary=f"{fix.commit_message.splitlines()[0]} — {fix.tests.summary}",
            files_changed=list(fix.files_changed),
        ),
        stage="review",
    )
    await adapters.request(
        ctx.deps.pool, event.incident_id, risk.model_dump(mode="json"), fix.model_dump(mode="json"), out.event_id
    )
    return [out]


@service.handler("review-decisions", ApprovalDecided)
async def on_decision(event: ApprovalDecided, ctx: StageContext[ReviewDeps]) -> Sequence[Event[Any]]:
    if event.incident_id is None:
        raise Poison("approval.decided without incident_id")
    d = event.payload
    refused = logic.refusal(d, ctx.deps.policy)
    if refused is not None:
        log.warning("approval.decided for %s refused: %s", event.incident_id, refused)
        await store.audit(ctx.deps.pool, actor=d.decided_by, action=f"approval.{d.decision}.refused",
                          incident_id=event.incident_id,
                          details={"reason": refused, "channel": d.channel, "account": d.decided_by_id})  # fmt: skip
        return []
    async with ctx.deps.pool.acquire() as conn:
        approval, decided_now = await adapters.decide(conn, event.incident_id, d.decision, d.decided_by, d.reason)
        if approval is None:
            raise Poison(f"incident {event.incident_id} has no pending approval")
        if not decided_now:
            log.warning(
                "approval for %s was already %s by %s; ignoring %s by %s",
                event.incident_id,
                approval.status,
                approval.decided_by,
                d.decision,
                d.decided_by,
            )
            await store.audit(
                conn,
                actor=d.decided_by,
                action=f"approval.{d.decision}.ignored",
                incident_id=event.incident_id,
                details={"already": approval.status},
            )
            return []
        await store.audit(conn, actor=d.decided_by, action=f"approval.{d.decision}", incident_id=event.incident_id,
                          details={"reason": d.reason, "channel": d.channel})  # fmt: skip
    risk = RiskAssessment.model_validate(approval.risk)
    if approval.status == "approved":
        fix = FixValidatedPayload.model_validate(approval.fix)
        payload = FixApprovedPayload(risk=risk, approved_by=d.decided_by, reason=d.reason, fix=fix)
        return [event.derive(FixApproved, payload, stage="review")]
    rejected = FixRejectedPayload(risk=risk, rejected_by=d.decided_by, reason=d.reason)
    return [event.derive(FixRejected, rejected, stage="review")]

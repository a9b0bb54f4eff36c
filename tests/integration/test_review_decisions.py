"""Review's approval decisions on a real nats-server and Postgres: who may decide from Slack, and the approvals
store's contract (the one the memory store in services/review/memory.py imitates)."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from pagerpatch.kernel import bus
from pagerpatch.settings import PolicySettings
from schemas import subjects
from schemas.events import (
    ApprovalDecided,
    ApprovalDecidedPayload,
    FixValidatedPayload,
    RiskAssessment,
    RiskLevel,
)
from services.review.adapters import PgApprovals
from services.review.app import bootstrap, create_service
from services.review.domain import AuditEntry
from tests.integration.test_runtime import make_settings, stream_events
from tests.support.review import fix_payload
from tests.support.stages import running_stage
from tests.support.streams import wait_for

pytestmark = pytest.mark.integration


def pending_fix() -> tuple[RiskAssessment, FixValidatedPayload]:
    risk = RiskAssessment(level=RiskLevel.HIGH, score=3, reasons=["touches migrations/"])
    return risk, fix_payload(strategy="revert-and-test")


def decided(incident: uuid.UUID, account: str) -> ApprovalDecided:
    payload = ApprovalDecidedPayload(decision="approve", decided_by=f"user-{account}", channel="slack",
                                     decided_by_id=account, reason="decided in Slack")  # fmt: skip
    return ApprovalDecided.create(payload, source="ingest", incident_id=incident)


async def test_a_slack_click_counts_only_from_a_listed_approver(nats_url, fresh_db, js, tmp_path) -> None:
    settings = make_settings(nats_url, fresh_db, tmp_path)
    settings = settings.model_copy(update={"policy": PolicySettings(slack_approvers=["U0DANA"])})
    async with running_stage(create_service(), bootstrap, settings, js) as svc:
        incident = uuid.uuid4()
        risk, fix = pending_fix()
        await PgApprovals(svc.pool).request(incident, risk=risk, fix=fix, event_id=uuid.uuid4())

        stranger = decided(incident, "U0MALLORY")
        await bus.publish(svc.broker, stranger)
        sql = "SELECT details FROM audit_log WHERE action = 'approval.approve.refused' AND incident_id = $1"
        details = await wait_for(lambda: svc.pool.fetchval(sql, incident))
        reason = (json.loads(details) if isinstance(details, str) else details)["reason"]
        assert "U0MALLORY" in reason and "policy.slack_approvers" in reason
        assert await svc.pool.fetchval("SELECT status FROM approvals WHERE incident_id = $1", incident) == "pending"

        await bus.publish(svc.broker, decided(incident, "U0DANA"))
        status = "SELECT status = 'approved' FROM approvals WHERE incident_id = $1"
        await wait_for(lambda: svc.pool.fetchval(status, incident))
        approved = [json.loads(m) for m in await stream_events(js, subjects.FIX_APPROVED)]
        assert [(a["incident_id"], a["payload"]["approved_by"]) for a in approved] == [(str(incident), "user-U0DANA")]


def entry(incident: uuid.UUID, action: str, **details: object) -> AuditEntry:
    return AuditEntry(actor="dana", action=action, incident_id=incident, details=details)


async def test_the_first_decision_settles_an_approval_with_its_audit_line(pool: asyncpg.Pool) -> None:
    approvals, incident = PgApprovals(pool), uuid.uuid4()
    risk, fix = pending_fix()
    await approvals.request(incident, risk=risk, fix=fix, event_id=uuid.uuid4())
    other = fix.model_copy(update={"commit_message": "another fix"})
    await approvals.request(incident, risk=risk, fix=other, event_id=uuid.uuid4())  # changes nothing

    first, decided_now = await approvals.decide(incident, "reject", by="dana", reason="no",
                                                audit=entry(incident, "approval.reject"))  # fmt: skip
    assert decided_now and first is not None
    assert (first.status, first.decided_by, first.reason) == ("rejected", "dana", "no")
    assert FixValidatedPayload.model_validate(first.fix) == fix
    late, decided_now = await approvals.decide(incident, "approve", by="eve", reason="",
                                               audit=entry(incident, "approval.approve"))  # fmt: skip
    assert not decided_now and late is not None and late.status == "rejected" and late.decided_by == "dana"
    actions = await pool.fetch("SELECT action FROM audit_log WHERE incident_id = $1 ORDER BY id", incident)
    assert [r["action"] for r in actions] == ["approval.reject"]
    assert await approvals.decide(uuid.uuid4(), "approve", by="dana", reason="",
                                  audit=entry(incident, "approval.approve")) == (None, False)  # fmt: skip


async def test_a_decision_whose_audit_line_fails_is_not_committed(pool: asyncpg.Pool) -> None:
    approvals, incident = PgApprovals(pool), uuid.uuid4()
    risk, fix = pending_fix()
    await approvals.request(incident, risk=risk, fix=fix, event_id=uuid.uuid4())
    unwritable = entry(incident, "approval.approve", reason=object())  # not JSON: the audit insert fails
    with pytest.raises(asyncpg.DataError):
        await approvals.decide(incident, "approve", by="dana", reason="", audit=unwritable)
    assert await pool.fetchval("SELECT status FROM approvals WHERE incident_id = $1", incident) == "pending"
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE incident_id = $1", incident) == 0

"""Review's approval decisions on a real nats-server and Postgres: who may decide from Slack."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel import bus, store
from pagerpatch.kernel.runtime import start_service, stop_service
from pagerpatch.settings import PolicySettings
from schemas import subjects
from schemas.events import (
    ApprovalDecided,
    ApprovalDecidedPayload,
    DiagnosisReadyPayload,
    FixValidatedPayload,
    RiskAssessment,
    RiskLevel,
    TestRun,
)
from services.review import adapters
from services.review.app import bootstrap, create_service
from tests.integration.test_runtime import make_settings, stream_events, wait_for

pytestmark = pytest.mark.integration
SHA = "a" * 40


def pending_fix() -> tuple[dict[str, Any], dict[str, Any]]:
    diagnosis = DiagnosisReadyPayload(repo="shop", base_commit=SHA, root_cause="KeyError", confidence=0.9)
    tests = TestRun(command="pytest", passed=True, exit_code=0, duration_s=1.0)
    fix = FixValidatedPayload(repo="shop", base_commit=SHA, strategy="revert-and-test", patch="", tests=tests,
                              commit_message="Revert", attempts=1, diagnosis=diagnosis)  # fmt: skip
    risk = RiskAssessment(level=RiskLevel.HIGH, score=3, reasons=["touches migrations/"])
    return risk.model_dump(mode="json"), fix.model_dump(mode="json")


def decided(incident: uuid.UUID, account: str) -> ApprovalDecided:
    payload = ApprovalDecidedPayload(decision="approve", decided_by=f"user-{account}", channel="slack",
                                     decided_by_id=account, reason="decided in Slack")  # fmt: skip
    return ApprovalDecided.create(payload, source="ingest", incident_id=incident)


async def test_a_slack_click_counts_only_from_a_listed_approver(nats_url, fresh_db, js, tmp_path) -> None:
    settings = make_settings(nats_url, fresh_db, tmp_path)
    settings = settings.model_copy(update={"policy": PolicySettings(slack_approvers=["U0DANA"])})
    await bus.setup(js, settings.bus)
    await store.migrate(fresh_db)
    svc = await start_service(create_service(), settings, bootstrap, finish=finish_handoff)
    try:
        incident = uuid.uuid4()
        risk, fix = pending_fix()
        await adapters.request(svc.pool, incident, risk, fix, uuid.uuid4())

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
    finally:
        await stop_service(svc)

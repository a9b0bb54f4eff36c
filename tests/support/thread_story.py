"""One incident's events from opened to pull request (and the failed variant), as the stages derive them: what the
Slack thread and Linear issue tests feed the notifier."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from schemas.envelope import Event
from schemas.events import (
    ApprovalDecided,
    ApprovalDecidedPayload,
    ApprovalRequested,
    ApprovalRequestedPayload,
    DiagnosisReady,
    DiagnosisReadyPayload,
    Evidence,
    FixApproved,
    FixApprovedPayload,
    FixFailed,
    FixFailedPayload,
    FixRejected,
    FixRejectedPayload,
    FixValidated,
    IncidentOpened,
    IncidentOpenedPayload,
    PrOpened,
    PrOpenedPayload,
    RiskAssessment,
    RiskLevel,
    Severity,
    SuspectCommit,
)
from tests.support.review import fix_payload

APPROVER = "U012AB3CD"
HIGH = RiskAssessment(level=RiskLevel.HIGH, score=7, reasons=["touches migrations/0003.sql (protected path)"])


@dataclass
class Story:
    opened: IncidentOpened
    diagnosis: DiagnosisReady
    validated: FixValidated
    requested: ApprovalRequested
    decided: ApprovalDecided
    approved: FixApproved
    pr: PrOpened
    failed: FixFailed

    @property
    def incident_id(self) -> uuid.UUID:
        assert self.opened.incident_id is not None
        return self.opened.incident_id

    def happy_path(self) -> list[Event[Any]]:
        return [self.opened, self.diagnosis, self.validated, self.requested, self.decided, self.approved, self.pr]

    def click(self, user_id: str, *, decision: str = "approve", name: str = "someone") -> ApprovalDecided:
        payload = ApprovalDecidedPayload(
            decision=decision,
            decided_by=name,
            reason="decided in Slack",
            channel="slack",
            decided_by_id=user_id,
        )
        return ApprovalDecided.create(payload, source="ingest", team="payments", incident_id=self.incident_id)

    def rejected(self) -> FixRejected:
        payload = FixRejectedPayload(risk=HIGH, rejected_by="jtorrance", reason="not during the sale")
        return self.decided.derive(FixRejected, payload, stage="review")


def story(*, title: str = "KeyError: 'SPRING' in apply_coupon", team: str = "payments") -> Story:
    incident = uuid.uuid4()
    opened = IncidentOpened.create(
        IncidentOpenedPayload(
            fingerprint="fp",
            title=title,
            service="checkout",
            severity=Severity.P1,
            repo="shop",
            reasons=["tier 0 service: severity raised to P1", "error with a stack trace"],
        ),
        source="triage",
        team=team,
        incident_id=incident,
    )
    diag = DiagnosisReadyPayload(
        repo="shop",
        base_commit="a" * 40,
        root_cause="apply_coupon indexes COUPONS without checking the code",
        suspect_commit=SuspectCommit(sha="b" * 40, subject="pricing: simplify coupon lookup"),
        confidence=0.86,
        evidence=[Evidence(file="shop/pricing.py", line=42, function="apply_coupon", note="KeyError raised here")],
        title=title,
        severity=Severity.P1,
    )
    diagnosis = opened.derive(DiagnosisReady, diag, stage="diagnosis")
    fix = fix_payload(
        summary="12 passed",
        proof="proved",
        proof_detail="test_invalid_coupon fails at the base",
        files_changed=["shop/pricing.py"],
        lines_added=3,
        lines_removed=1,
        diagnosis=diag,
    )
    validated = diagnosis.derive(FixValidated, fix, stage="fixgen")
    requested = validated.derive(
        ApprovalRequested,
        ApprovalRequestedPayload(
            risk=HIGH, repo="shop", summary="Revert — 12 passed", files_changed=["shop/pricing.py"]
        ),
        stage="review",
    )
    decided = ApprovalDecided.create(
        ApprovalDecidedPayload(
            decision="approve",
            decided_by="jtorrance",
            reason="decided in Slack",
            channel="slack",
            decided_by_id=APPROVER,
        ),
        source="ingest",
        team=team,
        incident_id=incident,
    )
    approved = decided.derive(
        FixApproved, FixApprovedPayload(risk=HIGH, approved_by="jtorrance", fix=fix), stage="review"
    )
    pr = approved.derive(
        PrOpened,
        PrOpenedPayload(
            repo="shop",
            provider="github",
            branch=f"pagerpatch/{incident}",
            head_commit="c" * 40,
            title="fix: KeyError in apply_coupon",
            url="https://github.com/acme/shop/pull/7",
            number=7,
        ),
        stage="notifier",
    )
    failed = diagnosis.derive(
        FixFailed,
        FixFailedPayload(
            repo="shop",
            reason="every candidate revert left the failing test failing",
            attempts=2,
            tried=["revert bbbbbbb: test_invalid_coupon still fails"],
        ),
        stage="fixgen",
    )
    return Story(opened, diagnosis, validated, requested, decided, approved, pr, failed)

"""Review's use case on memory ports: the policy gate, the approval store and who may decide (no servers)."""

from __future__ import annotations

import uuid
from typing import Literal

import pytest

from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Poison
from pagerpatch.kernel.runtime import StageContext
from pagerpatch.settings import Settings
from schemas import streams
from schemas.events import (
    ApprovalDecided,
    ApprovalDecidedPayload,
    ApprovalRequested,
    FixApproved,
    FixRejected,
    FixValidated,
    FixValidatedPayload,
    RiskAssessment,
    RiskLevel,
)
from services.review import handlers
from services.review.domain import UNPROVEN, RiskPolicy
from services.review.memory import MemoryApprovals, MemoryAudit
from services.review.usecase import Review
from tests.support.ports import memory
from tests.support.review import fix_payload

SHA = "b" * 40
INCIDENT = uuid.UUID("6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5b")
POLICY = RiskPolicy(protected_paths=("migrations/**",), slack_approvers=frozenset({"U0DANA"}))


def review() -> Review:
    audit = MemoryAudit()
    return Review(policy=POLICY, approvals=MemoryApprovals(audit=audit), audit=audit)


def approvals_of(r: Review) -> MemoryApprovals:
    return memory(r.approvals, MemoryApprovals)


def audit_of(r: Review) -> MemoryAudit:
    return memory(r.audit, MemoryAudit)


def validated(
    files: tuple[str, ...] = ("shop/pricing.py",),
    incident: uuid.UUID | None = INCIDENT,
    proof: Literal["proved", "unproven"] = "proved",
    removed_tests: tuple[str, ...] = (),
) -> FixValidated:
    fix = fix_payload(base_commit=SHA, summary="12 passed", patch="diff --git a/x b/x\n",
                      commit_message="Revert coupons\n\nbody", files_changed=list(files), lines_added=3,
                      lines_removed=2, proof=proof, removed_tests=list(removed_tests))  # fmt: skip
    return FixValidated.create(fix, source="fixgen", incident_id=incident)


def decision(
    verdict: str = "approve", *, by: str = "dana", channel: str = "cli", account: str | None = None, reason: str = ""
) -> ApprovalDecided:
    payload = ApprovalDecidedPayload.model_validate(
        {"decision": verdict, "decided_by": by, "channel": channel, "decided_by_id": account, "reason": reason}
    )
    return ApprovalDecided.create(payload, source="ingest", incident_id=INCIDENT)


async def waiting(r: Review) -> FixValidated:
    """A HIGH-risk fix held at the gate."""
    fix = validated(files=("migrations/0003_coupons.sql",))
    [out] = await r.on_fix(fix)
    assert isinstance(out, ApprovalRequested)
    return fix


# ---------------------------------------------------------------- the gate


async def test_a_low_risk_fix_is_approved_by_policy_and_nothing_waits() -> None:
    r = review()
    fix = validated()
    [out] = await r.on_fix(fix)
    assert isinstance(out, FixApproved)
    assert out.payload.approved_by == "policy" and out.payload.risk.level is RiskLevel.LOW
    assert out.payload.fix == fix.payload
    assert (out.causation_id, out.incident_id) == (fix.event_id, INCIDENT)
    assert approvals_of(r).approvals == {} and audit_of(r).entries == []


async def test_a_low_risk_fix_without_incident_still_goes_on() -> None:
    [out] = await review().on_fix(validated(incident=None))
    assert isinstance(out, FixApproved)


async def test_a_high_risk_fix_waits_and_its_approval_is_stored() -> None:
    r = review()
    fix = validated(files=("migrations/0003_coupons.sql",))
    [out] = await r.on_fix(fix)
    assert isinstance(out, ApprovalRequested)
    assert out.payload.risk.level is RiskLevel.HIGH
    assert out.payload.summary == "Revert coupons — 12 passed"
    stored = approvals_of(r).approvals[INCIDENT]
    assert stored.status == "pending"
    assert FixValidatedPayload.model_validate(stored.fix) == fix.payload
    assert RiskAssessment.model_validate(stored.risk) == out.payload.risk
    assert approvals_of(r).request_events[INCIDENT] == out.event_id
    assert (await r.on_fix(fix))[0].event_id == out.event_id  # a redelivery asks again, with the same event


async def test_an_unproven_fix_waits_at_medium_even_when_the_policy_would_let_everything_through() -> None:
    audit = MemoryAudit()
    anything_goes = RiskPolicy(approval_threshold=RiskLevel.CRITICAL)
    r = Review(policy=anything_goes, approvals=MemoryApprovals(audit=audit), audit=audit)
    fix = validated(proof="unproven")
    [out] = await r.on_fix(fix)
    assert isinstance(out, ApprovalRequested)
    assert out.payload.risk.level is RiskLevel.MEDIUM and out.payload.risk.reasons == [UNPROVEN]
    assert approvals_of(r).approvals[INCIDENT].status == "pending"
    [released] = await r.on_decision(decision("approve", by="dana", reason="read the diff"), INCIDENT)
    assert isinstance(released, FixApproved) and released.payload.approved_by == "dana"
    assert released.payload.fix.proof == "unproven"  # the approver's decision does not make it proved


async def test_a_fix_with_no_proof_at_all_is_treated_as_unproven() -> None:
    fields = validated().payload.model_dump(mode="json")
    del fields["proof"]  # a producer that says nothing about proof (an older fixgen, an agent)
    bare = FixValidated.create(FixValidatedPayload.model_validate(fields), source="fixgen", incident_id=INCIDENT)
    [out] = await review().on_fix(bare)
    assert isinstance(out, ApprovalRequested) and UNPROVEN in out.payload.risk.reasons


async def test_an_unproven_fix_without_incident_is_poison_not_approved() -> None:
    with pytest.raises(Poison, match="cannot wait for approval"):
        await review().on_fix(validated(proof="unproven", incident=None))


async def test_the_tests_a_revert_removes_are_counted_in_the_risk() -> None:
    removed = ("tests/test_coupons.py::test_normalized", "tests/test_coupons.py::test_lowercase")
    [out] = await review().on_fix(validated(removed_tests=removed))
    assert isinstance(out, FixApproved)  # proved and small: removing its own tests does not hold it
    assert "the revert removes 2 tests (listed in the pull request)" in out.payload.risk.reasons
    [waits] = await review().on_fix(validated(proof="unproven", removed_tests=removed))
    assert isinstance(waits, ApprovalRequested)
    assert waits.payload.risk.reasons == [UNPROVEN, "the revert removes 2 tests (listed in the pull request)"]


async def test_a_high_risk_fix_without_incident_is_poison() -> None:
    with pytest.raises(Poison, match="cannot wait for approval"):
        await review().on_fix(validated(files=("migrations/x.sql",), incident=None))


# ---------------------------------------------------------------- decisions


async def test_approve_releases_the_stored_fix() -> None:
    r = review()
    fix = await waiting(r)
    [out] = await r.on_decision(decision("approve", by="dana", reason="looks right"), INCIDENT)
    assert isinstance(out, FixApproved)
    assert out.payload.fix == fix.payload
    assert (out.payload.approved_by, out.payload.reason, out.payload.risk.level) == ("dana", "looks right",
                                                                                    RiskLevel.HIGH)  # fmt: skip
    assert approvals_of(r).approvals[INCIDENT].status == "approved"
    assert audit_of(r).actions(INCIDENT) == ["approval.approve"]


async def test_reject_turns_the_fix_down() -> None:
    r = review()
    await waiting(r)
    [out] = await r.on_decision(decision("reject", by="erin", reason="wrong table"), INCIDENT)
    assert isinstance(out, FixRejected)
    assert (out.payload.rejected_by, out.payload.reason) == ("erin", "wrong table")
    assert out.payload.risk is not None and out.payload.risk.level is RiskLevel.HIGH
    assert approvals_of(r).approvals[INCIDENT].status == "rejected"
    assert audit_of(r).actions(INCIDENT) == ["approval.reject"]


async def test_a_slack_click_from_a_non_approver_is_refused_audited_and_changes_nothing() -> None:
    r = review()
    await waiting(r)
    out = await r.on_decision(decision(by="mallory", channel="slack", account="U0MALLORY"), INCIDENT)
    assert out == []
    assert approvals_of(r).approvals[INCIDENT].status == "pending"
    [refused] = audit_of(r).entries
    assert (refused.action, refused.actor) == ("approval.approve.refused", "mallory")
    assert refused.details["account"] == "U0MALLORY" and "policy.slack_approvers" in refused.details["reason"]
    [released] = await r.on_decision(decision(by="dana", channel="slack", account="U0DANA"), INCIDENT)
    assert isinstance(released, FixApproved)  # a listed approver still decides afterwards


async def test_a_second_decision_is_ignored_and_audited() -> None:
    r = review()
    await waiting(r)
    await r.on_decision(decision("approve", by="dana"), INCIDENT)
    assert await r.on_decision(decision("reject", by="erin"), INCIDENT) == []
    approval = approvals_of(r).approvals[INCIDENT]
    assert (approval.status, approval.decided_by) == ("approved", "dana")
    assert audit_of(r).actions(INCIDENT) == ["approval.approve", "approval.reject.ignored"]
    assert audit_of(r).entries[-1].details == {"already": "approved"}


async def test_a_decision_without_a_pending_approval_is_poison() -> None:
    r = review()
    with pytest.raises(Poison, match="has no pending approval"):
        await r.on_decision(decision(), INCIDENT)
    assert audit_of(r).entries == []


# ---------------------------------------------------------------- the handlers' guard


async def test_the_decision_handler_refuses_an_event_without_incident() -> None:
    r = review()
    ctx = StageContext(service="review", consumer=streams.consumer("review-decisions"),
                       settings=Settings(), breakers=Breakers(), deps=r)  # fmt: skip
    event = decision().model_copy(update={"incident_id": None})
    with pytest.raises(Poison, match=r"approval\.decided without incident_id"):
        await handlers.on_decision(event, ctx)
    assert audit_of(r).entries == []

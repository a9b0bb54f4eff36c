"""The review agent's critique on top of the rules (pure, and through the use case on memory ports): it can raise
the risk and adds its findings; it never lowers the rules' level; an unavailable model leaves the rules, noted.
Decisions leave preference pairs."""

from __future__ import annotations

import uuid

import pytest

from schemas.events import (
    ApprovalDecided,
    ApprovalDecidedPayload,
    ApprovalRequested,
    FixApproved,
    FixRejected,
    FixValidated,
    RiskAssessment,
    RiskLevel,
)
from schemas.review import ReviewFinding
from services.review.critique import Critique, Unavailable, model_level, reviewed
from services.review.domain import RiskPolicy
from services.review.memory import MemoryApprovals, MemoryAudit, ScriptedCritic
from services.review.usecase import Review
from tests.support.review import fix_payload

INCIDENT = uuid.UUID("0b8f5a52-9c1e-4d7a-9d55-0f3f6c2b1a77")
RULES_HIGH = RiskAssessment(level=RiskLevel.HIGH, score=50, reasons=["touches protected path(s): deploy/a.yaml"])
RULES_LOW = RiskAssessment(level=RiskLevel.LOW, score=0, reasons=["small change (5 lines in 1 file(s)), tests passed"])


def finding(severity: str = "MEDIUM", line: int | None = 12) -> ReviewFinding:
    return ReviewFinding.model_validate(
        {"file": "shop/pricing.py", "line": line, "severity": severity, "message": "swallows every KeyError",
         "regression_risk": "hides bad carts"}
    )  # fmt: skip


def critique(risk: str = "LOW", would_merge: bool = True, findings: list[ReviewFinding] | None = None) -> Critique:
    return Critique.model_validate({"summary": "fixes the lookup", "risk": risk, "would_merge": would_merge,
                                    "regression_risk": "", "findings": findings or []})  # fmt: skip


@pytest.mark.parametrize("answer", ["LOW", "MEDIUM", "HIGH"])
def test_the_model_never_lowers_the_rules_level(answer: str) -> None:
    risk = reviewed(RULES_HIGH, critique(answer))
    assert risk.level == RiskLevel.HIGH
    assert risk.rules_level == RiskLevel.HIGH and risk.score == RULES_HIGH.score
    if answer != "HIGH":
        assert f"model review said {answer}; the rules' HIGH stands (never lowered)" in risk.reasons


@pytest.mark.parametrize(
    ("answer", "level"),
    [
        (critique("MEDIUM"), RiskLevel.MEDIUM),
        (critique("LOW", findings=[finding("HIGH")]), RiskLevel.HIGH),  # the worst finding counts
        (critique("LOW", would_merge=False), RiskLevel.HIGH),  # a reviewer who would not merge: a human decides
        (critique("CRITICAL"), RiskLevel.CRITICAL),
    ],
)
def test_the_model_raises_the_level(answer: Critique, level: RiskLevel) -> None:
    assert model_level(answer) == level
    risk = reviewed(RULES_LOW, answer)
    assert risk.level == level and risk.rules_level == RiskLevel.LOW
    assert f"model review raised the risk from LOW to {level.value}" in risk.reasons
    assert risk.score > RULES_LOW.score


def test_findings_are_kept_and_listed_in_the_reasons() -> None:
    risk = reviewed(RULES_LOW, critique("MEDIUM", would_merge=True, findings=[finding(), finding("LOW", None)]))
    assert risk.findings == [finding(), finding("LOW", None)] and risk.would_merge is True
    assert "finding shop/pricing.py:12 [MEDIUM] swallows every KeyError — could break: hides bad carts" in risk.reasons
    assert any(r.startswith("finding shop/pricing.py [LOW]") for r in risk.reasons)
    assert risk.reasons[0] == RULES_LOW.reasons[0]  # the rules' reasons first, unchanged


def test_an_unavailable_model_leaves_the_rules_and_says_so() -> None:
    risk = reviewed(RULES_HIGH, Unavailable("LlmUnavailable: overloaded"))
    assert (risk.level, risk.score, risk.findings, risk.would_merge) == (RiskLevel.HIGH, 50, [], None)
    assert risk.reasons[-1] == "model review unavailable (LlmUnavailable: overloaded): rules only"


# ---------------------------------------------------------------- through the use case

POLICY = RiskPolicy(protected_paths=("deploy/**",))


def review(*answers: Critique | Unavailable) -> tuple[Review, ScriptedCritic, MemoryApprovals]:
    audit = MemoryAudit()
    approvals = MemoryApprovals(audit=audit)
    critic = ScriptedCritic(answers=list(answers))
    return Review(policy=POLICY, approvals=approvals, audit=audit, critic=critic), critic, approvals


def validated(files: list[str]) -> FixValidated:
    fix = fix_payload(files_changed=files, lines_added=3, lines_removed=1, proof="proved", patch="diff --git a/x b/x\n",
                      commit_message="Revert coupons")  # fmt: skip
    return FixValidated.create(fix, source="fixgen", incident_id=INCIDENT)


async def test_a_low_answer_for_a_high_fix_still_waits_for_a_person() -> None:
    r, critic, approvals = review(critique("LOW"))
    [out] = await r.on_fix(validated(["deploy/a.yaml"]))
    assert isinstance(out, ApprovalRequested)
    assert out.payload.risk.level == RiskLevel.HIGH and out.payload.risk.rules_level == RiskLevel.HIGH
    assert len(critic.asked) == 1 and critic.asked[0][1].level == RiskLevel.HIGH  # the model saw the rules' floor
    assert approvals.approvals[INCIDENT].risk["level"] == "HIGH"


async def test_a_model_that_would_not_merge_holds_a_fix_the_rules_would_pass() -> None:
    r, _, _ = review(critique("LOW", would_merge=False, findings=[finding("MEDIUM")]))
    [out] = await r.on_fix(validated(["shop/pricing.py"]))
    assert isinstance(out, ApprovalRequested)
    risk = out.payload.risk
    assert (risk.level, risk.rules_level, risk.would_merge) == (RiskLevel.HIGH, RiskLevel.LOW, False)
    assert risk.findings == [finding("MEDIUM")]


async def test_findings_of_an_approved_fix_travel_to_the_pull_request() -> None:
    r, _, _ = review(critique("LOW", findings=[finding("LOW")]))
    [out] = await r.on_fix(validated(["shop/pricing.py"]))
    assert isinstance(out, FixApproved) and out.payload.approved_by == "policy"
    assert out.payload.risk.findings == [finding("LOW")]
    assert any(r.startswith("finding shop/pricing.py:12 [LOW]") for r in out.payload.risk.reasons)


async def test_model_down_means_rules_only_noted() -> None:
    r, _, _ = review(Unavailable("LlmUnavailable: retries spent"))
    [out] = await r.on_fix(validated(["shop/pricing.py"]))
    assert isinstance(out, FixApproved)
    assert out.payload.risk.level == RiskLevel.LOW
    assert "model review unavailable (LlmUnavailable: retries spent): rules only" in out.payload.risk.reasons


@pytest.mark.parametrize(("decision", "outcome", "emitted"), [("reject", "rejected", FixRejected),
                                                              ("approve", "approved", FixApproved)])  # fmt: skip
async def test_a_decision_leaves_one_preference_pair(decision: str, outcome: str, emitted: type) -> None:
    r, _, approvals = review(critique("LOW"))
    await r.on_fix(validated(["deploy/a.yaml"]))
    d = ApprovalDecidedPayload.model_validate(
        {"decision": decision, "decided_by": "dana", "channel": "slack", "decided_by_id": "U0DANA",
         "reason": "hides the bad coupon"}
    )  # fmt: skip
    r2 = Review(policy=RiskPolicy(protected_paths=("deploy/**",), slack_approvers=frozenset({"U0DANA"})),
                approvals=approvals, audit=approvals.audit)  # fmt: skip
    event = ApprovalDecided.create(d, source="slack", incident_id=INCIDENT)
    [out] = await r2.on_decision(event, INCIDENT)
    assert isinstance(out, emitted)
    [pair] = approvals.preferences
    assert (pair.outcome, pair.reason, pair.decided_by, pair.channel) == (
        outcome,
        "hides the bad coupon",
        "dana",
        "slack",
    )
    assert pair.diagnosis["root_cause"] == "KeyError" and pair.patch == "diff --git a/x b/x\n"
    assert pair.risk["level"] == "HIGH"
    assert await r2.on_decision(event, INCIDENT) == []  # a repeated decision changes nothing
    assert len(approvals.preferences) == 1

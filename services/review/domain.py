"""Review's pure rules: the risk of a fix (diff size, files touched, protected paths, tests, whether anything proves
it, whether the failure was reproduced, workflow/CI and dependency files, new network or subprocess calls), who may
decide an approval, and what the audit log says about each decision. Plain values in, plain values out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pagerpatch.git.paths import is_protected
from schemas.events import ApprovalDecidedPayload, FixValidatedPayload, RiskAssessment, RiskLevel
from services.review import rules

LEVELS = [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL]
UNPROVEN = "unproven: the tests pass with and without this change, so nothing shows it fixes the failure"


@dataclass(frozen=True)
class RiskPolicy:
    protected_paths: tuple[str, ...] = ()
    max_diff_lines: int = 400
    max_files: int = 10
    approval_threshold: RiskLevel = RiskLevel.HIGH
    slack_approvers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FixFacts:
    """What the risk rules look at. `proved`: a check failing at the base commit passes with the fix; a fix that
    is not proved fixes nothing anyone has shown, so it is never let through by policy."""

    files: tuple[str, ...]
    lines_added: int
    lines_removed: int
    tests_passed: bool
    proved: bool = False
    removed_tests: int = 0
    baseline_failures: int = 0  # tests that fail with the fix but already failed at the base commit
    reproduction_gap: str | None = None  # why the failure was not reproduced (rules.reproduction_gap), if it was not
    new_calls: tuple[rules.NewCall, ...] = ()  # network/subprocess calls on the lines the patch adds


# TestRun.failed_tests holds at most this many ids; a longer list may hide a new failure, so it proves nothing.
FAILED_IDS_LIMIT = 50


def only_baseline_failures(fix: FixValidatedPayload) -> int:
    """How many tests fail with the fix, when every one of them already failed at the base commit (0 otherwise):
    a suite that was red before the change is judged by what the change made worse, not by its old failures."""
    after, base = fix.tests, fix.base_tests
    if after.passed or base is None or not after.failed_tests or len(after.failed_tests) >= FAILED_IDS_LIMIT:
        return 0
    return len(after.failed_tests) if set(after.failed_tests) <= set(base.failed_tests) else 0


ApprovalStatus = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True)
class Approval:
    """One fix waiting at (or past) the gate; `risk` and `fix` are the JSON documents stored when it was asked."""

    incident_id: uuid.UUID
    status: ApprovalStatus
    risk: dict[str, Any]
    fix: dict[str, Any]
    decided_by: str | None
    reason: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One line for the append-only audit log."""

    actor: str
    action: str
    incident_id: uuid.UUID
    details: dict[str, Any] = field(default_factory=dict)


def facts_of(fix: FixValidatedPayload) -> FixFacts:
    """The facts the risk rules look at, taken from a validated fix."""
    return FixFacts(
        files=tuple(fix.files_changed),
        lines_added=fix.lines_added,
        lines_removed=fix.lines_removed,
        tests_passed=fix.tests.passed or only_baseline_failures(fix) > 0,
        proved=fix.proof == "proved",
        removed_tests=len(fix.removed_tests),
        baseline_failures=only_baseline_failures(fix),
        reproduction_gap=rules.reproduction_gap(fix.strategy, fix.reproduced, fix.reproduction_note),
        new_calls=tuple(rules.new_calls(fix.patch)),
    )


def assess(facts: FixFacts, policy: RiskPolicy) -> RiskAssessment:
    """Score the change; the level is the highest any single rule reached."""
    reasons: list[str] = []
    level = RiskLevel.LOW
    score = 0
    size = facts.lines_added + facts.lines_removed

    def bump(to: RiskLevel, points: int, why: str) -> None:
        nonlocal level, score
        score += points
        reasons.append(why)
        if LEVELS.index(to) > LEVELS.index(level):
            level = to

    if not facts.tests_passed:
        bump(RiskLevel.CRITICAL, 100, "the repository's tests did not pass")
    if not facts.files:
        bump(RiskLevel.CRITICAL, 100, "the patch changes no file")
    protected = [f for f in facts.files if is_protected(f, policy.protected_paths)]
    if protected:
        bump(RiskLevel.HIGH, 50, f"touches protected path(s): {', '.join(protected[:5])}")
    if size > policy.max_diff_lines:
        bump(RiskLevel.HIGH, 40, f"diff of {size} lines exceeds the limit of {policy.max_diff_lines}")
    elif size > policy.max_diff_lines // 2:
        bump(RiskLevel.MEDIUM, 20, f"diff of {size} lines is over half the limit")
    if len(facts.files) > policy.max_files:
        bump(RiskLevel.HIGH, 40, f"{len(facts.files)} files changed (limit {policy.max_files})")
    elif len(facts.files) > max(1, policy.max_files // 2):
        bump(RiskLevel.MEDIUM, 15, f"{len(facts.files)} files changed")
    if not facts.proved and facts.tests_passed:  # failing tests are CRITICAL already, and say so
        bump(RiskLevel.MEDIUM, 30, UNPROVEN)
    if facts.baseline_failures:
        bump(
            RiskLevel.MEDIUM,
            10,
            f"{_tests(facts.baseline_failures)} already failing at the base commit still fail "
            "(not caused by this change)",
        )
    workflows = [f for f in facts.files if rules.is_workflow(f)]
    if workflows:
        bump(RiskLevel.HIGH, 50, f"changes a CI/workflow definition: {', '.join(workflows[:5])}")
    dependencies = [f for f in facts.files if rules.is_dependency_file(f)]
    if dependencies:
        bump(RiskLevel.HIGH, 50, f"changes dependency manifests or lockfiles: {', '.join(dependencies[:5])}")
    for kind in ("network", "subprocess"):
        calls = [c for c in facts.new_calls if c.kind == kind]
        if calls:
            shown = "; ".join(f"{c.where()}: {c.text}" for c in calls[:3])
            more = f" (+{len(calls) - 3} more)" if len(calls) > 3 else ""
            bump(RiskLevel.HIGH, 50, f"adds {kind} call(s): {shown}"[:460] + more)
    if facts.reproduction_gap is not None:
        # One level above whatever the other rules reached: nothing shows the failure this fix is meant for.
        bump(raised(level), 25, facts.reproduction_gap[:480])
    if not reasons:
        reasons.append(f"small change ({size} lines in {len(facts.files)} file(s)), tests passed")
    if facts.removed_tests:
        # Said, not scored: a revert taking its own commit's tests with it is expected; the approver should see it.
        reasons.append(f"the revert removes {_tests(facts.removed_tests)} (listed in the pull request)")
    return RiskAssessment(level=level, score=score, reasons=reasons)


def raised(level: RiskLevel) -> RiskLevel:
    """One level up (CRITICAL stays CRITICAL)."""
    return LEVELS[min(LEVELS.index(level) + 1, len(LEVELS) - 1)]


def highest(*levels: RiskLevel) -> RiskLevel:
    return max(levels, key=LEVELS.index)


def _tests(n: int) -> str:
    return f"{n} test" if n == 1 else f"{n} tests"


def needs_approval(risk: RiskAssessment, policy: RiskPolicy) -> bool:
    """Whether the risk level reaches the policy's approval threshold."""
    return LEVELS.index(risk.level) >= LEVELS.index(policy.approval_threshold)


def must_wait(facts: FixFacts, risk: RiskAssessment, policy: RiskPolicy) -> bool:
    """Whether the fix waits at the approval gate: an unproven fix always does, whatever the threshold says."""
    return not facts.proved or needs_approval(risk, policy)


def refusal(decision: ApprovalDecidedPayload, policy: RiskPolicy) -> str | None:
    """Why a decision may not count (None: it counts).

    The CLI and API are operator tools (whoever runs them already holds the database); a Slack button can be
    clicked by anyone in the workspace, so only the Slack user ids in `policy.slack_approvers` decide there.
    """
    if decision.channel != "slack":
        return None
    if not policy.slack_approvers:
        return "no Slack approvers are configured (policy.slack_approvers): approve or reject with the CLI"
    if decision.decided_by_id not in policy.slack_approvers:
        who = decision.decided_by_id or "an unidentified user"
        return f"Slack user {who} ({decision.decided_by}) is not in policy.slack_approvers"
    return None


def approval_summary(fix: FixValidatedPayload) -> str:
    """The one line an approver reads first: the commit's subject and the tests' summary."""
    return f"{fix.commit_message.splitlines()[0]} — {fix.tests.summary}"


def status_after(decision: Literal["approve", "reject"]) -> ApprovalStatus:
    """The status a pending approval takes when this decision counts."""
    return "approved" if decision == "approve" else "rejected"


def refused_entry(incident_id: uuid.UUID, decision: ApprovalDecidedPayload, why: str) -> AuditEntry:
    """A decision that did not count (see `refusal`): recorded so a stray Slack click is visible afterwards."""
    return AuditEntry(
        actor=decision.decided_by,
        action=f"approval.{decision.decision}.refused",
        incident_id=incident_id,
        details={"reason": why, "channel": decision.channel, "account": decision.decided_by_id},
    )


def ignored_entry(incident_id: uuid.UUID, decision: ApprovalDecidedPayload, approval: Approval) -> AuditEntry:
    """A decision that came after another one had already settled the approval (first decision wins)."""
    return AuditEntry(
        actor=decision.decided_by,
        action=f"approval.{decision.decision}.ignored",
        incident_id=incident_id,
        details={"already": approval.status},
    )


@dataclass(frozen=True)
class PreferencePair:
    """A person's decision on a fix, kept for learning what reviewers accept: the diagnosis and the patch they saw,
    their reason and the outcome (`rejected` is the signal; `approved` pairs are kept as positive outcomes)."""

    incident_id: uuid.UUID
    outcome: ApprovalStatus
    reason: str
    decided_by: str
    channel: str
    repo: str
    strategy: str
    diagnosis: dict[str, Any]
    patch: str
    risk: dict[str, Any]


def preference_pair(approval: Approval, channel: str) -> PreferencePair:
    """The pair a settled approval leaves; `approval.fix` is the stored fix.validated payload (JSON)."""
    fix = approval.fix
    return PreferencePair(
        incident_id=approval.incident_id,
        outcome=approval.status,
        reason=approval.reason or "",
        decided_by=approval.decided_by or "",
        channel=channel,
        repo=str(fix.get("repo", "")),
        strategy=str(fix.get("strategy", "")),
        diagnosis=dict(fix.get("diagnosis") or {}),
        patch=str(fix.get("patch", "")),
        risk=approval.risk,
    )


def decided_entry(incident_id: uuid.UUID, decision: ApprovalDecidedPayload) -> AuditEntry:
    """The decision that settled the approval; written in the same transaction as the new status."""
    return AuditEntry(
        actor=decision.decided_by,
        action=f"approval.{decision.decision}",
        incident_id=incident_id,
        details={"reason": decision.reason, "channel": decision.channel},
    )

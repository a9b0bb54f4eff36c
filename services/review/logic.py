"""Deterministic risk rules (diff size, files touched, protected paths, whether tests passed) and who may decide."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from schemas.events import ApprovalDecidedPayload, RiskAssessment, RiskLevel

LEVELS = [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL]


@dataclass(frozen=True)
class RiskPolicy:
    protected_paths: tuple[str, ...] = ()
    max_diff_lines: int = 400
    max_files: int = 10
    approval_threshold: RiskLevel = RiskLevel.HIGH
    slack_approvers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FixFacts:
    files: tuple[str, ...]
    lines_added: int
    lines_removed: int
    tests_passed: bool


def is_protected(path: str, patterns: tuple[str, ...]) -> bool:
    """A path is protected when it matches a glob (`deploy/**`, `*.sql`) or sits under a listed folder."""
    for pattern in patterns:
        p = pattern.rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path == p or path.startswith(p + "/"):
            return True
        if pattern.endswith("/**") and path.startswith(pattern[:-2]):
            return True
    return False


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
    if not reasons:
        reasons.append(f"small change ({size} lines in {len(facts.files)} file(s)), tests passed")
    return RiskAssessment(level=level, score=score, reasons=reasons)


def needs_approval(risk: RiskAssessment, policy: RiskPolicy) -> bool:
    return LEVELS.index(risk.level) >= LEVELS.index(policy.approval_threshold)


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

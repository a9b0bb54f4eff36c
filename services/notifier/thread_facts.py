"""What each stage's event adds to an incident's thread (pure): a patch of facts per stage, merged into the stored
facts (`merge`), from which the Slack root message, the replies and the Linear issue are all rendered.

Each stage writes its own top-level key, so events arriving in any order (a diagnosis before the root message
exists, a decision before the approval request) merge into the same facts. Facts are plain JSON values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.envelope import Event
from schemas.events import (
    ApprovalDecided,
    ApprovalRequested,
    DiagnosisReady,
    FixApproved,
    FixFailed,
    FixRejected,
    FixValidated,
    IncidentOpened,
    PrEvent,
    PrOpened,
    RiskAssessment,
    TestRun,
)

Facts = dict[str, Any]

# Stage keys, in the order the root message shows them.
OPENED, DIAGNOSIS, FIX, RISK, APPROVAL, DECISION, PR, OUTCOME = (
    "opened",
    "diagnosis",
    "fix",
    "risk",
    "approval",
    "decision",
    "pr",
    "outcome",
)
LISTED = 10  # list items kept per fact (evidence, files, tests)


@dataclass(frozen=True)
class Patch:
    """What one event adds: facts by stage key, plus when an approval started or settled (for the Linear sweep)."""

    facts: Facts
    approval_requested_at: datetime | None = None
    approval_settled: bool = False
    refused_click: str | None = None  # a Slack click that does not count: whose (user id or name)
    team: str | None = None
    service: str | None = None
    notes: list[str] = field(default_factory=list)


def merge(facts: Facts, patch: Facts) -> Facts:
    """Stored facts with a patch applied: each stage key replaced whole (what `facts || patch` does in SQL), except
    `decision`, where an authoritative decision (review's fix.approved/fix.rejected) wins over a click and the
    first click wins over later ones."""
    out = dict(facts)
    for key, value in patch.items():
        if key == DECISION and isinstance(out.get(DECISION), dict):
            old = out[DECISION]
            same = (old.get("decision"), old.get("by")) == (value.get("decision"), value.get("by"))
            if same:  # review confirms the click (in either order): who, when and why stay the click's
                if old.get("authoritative") and value.get("authoritative"):
                    continue
                click = value if old.get("authoritative") else old
                value = {**click, "authoritative": bool(old.get("authoritative") or value.get("authoritative"))}
            elif not _decision_wins(old, value):
                continue
        if key == OUTCOME and isinstance(out.get(OUTCOME), dict):
            if OUTCOME_RANK.get(out[OUTCOME].get("state"), 0) > OUTCOME_RANK.get(value.get("state"), 0):
                continue  # a late or redelivered earlier stage does not take the incident back
        out[key] = value
    return out


# How far an outcome is along: a later one is never replaced by an earlier one.
OUTCOME_RANK = {"approved": 1, "pr_opened": 2, "failed": 3, "rejected": 3, "resolved": 4, "pr_closed": 4}


def _decision_wins(old: dict[str, Any], new: dict[str, Any]) -> bool:
    if old.get("authoritative"):
        return False
    return bool(new.get("authoritative"))


def patch_for(event: Event[Any], *, slack_approvers: frozenset[str] = frozenset()) -> Patch:
    """The facts an event adds (an event type the thread does not show adds nothing)."""
    at = event.occurred_at.isoformat()
    if isinstance(event, IncidentOpened):
        p = event.payload
        opened = {
            "title": p.title,
            "service": p.service,
            "severity": p.severity.value,
            "repo": p.repo,
            "reasons": p.reasons[:LISTED],
            "at": at,
        }
        return Patch({OPENED: opened}, team=event.team, service=p.service)
    if isinstance(event, DiagnosisReady):
        return Patch({DIAGNOSIS: _diagnosis(event)}, team=event.team)
    if isinstance(event, FixValidated):
        f = event.payload
        fix = {
            "status": "validated",
            "proof": f.proof,
            "proof_detail": f.proof_detail[:500],
            "strategy": f.strategy,
            "tests": _run(f.tests),
            "base_tests": _run(f.base_tests) if f.base_tests else None,
            "files": f.files_changed[:LISTED],
            "files_count": len(f.files_changed),
            "added": f.lines_added,
            "removed": f.lines_removed,
            "fixed_tests": f.fixed_tests[:LISTED],
            "at": at,
        }
        return Patch({FIX: fix}, team=event.team)
    if isinstance(event, FixFailed):
        failed = event.payload
        fix = {
            "status": "failed",
            "reason": failed.reason[:2000],
            "tried": failed.tried[:LISTED],
            "attempts": failed.attempts,
            "tests": _run(failed.tests) if failed.tests else None,
            "at": at,
        }
        outcome = {"state": "failed", "text": "no validated fix", "at": at}
        return Patch({FIX: fix, OUTCOME: outcome}, team=event.team)
    if isinstance(event, ApprovalRequested):
        req = event.payload
        approval = {"summary": req.summary[:2000], "files": req.files_changed[:LISTED], "at": at}
        return Patch(
            {RISK: _risk(req.risk), APPROVAL: approval}, approval_requested_at=event.occurred_at, team=event.team
        )
    if isinstance(event, ApprovalDecided):
        d = event.payload
        counts = d.channel != "slack" or (d.decided_by_id is not None and d.decided_by_id in slack_approvers)
        if not counts:
            return Patch({}, refused_click=d.decided_by_id or d.decided_by, team=event.team)
        decision = {
            "decision": d.decision,
            "by": d.decided_by,
            "channel": d.channel,
            "reason": d.reason[:500],
            "at": at,
            "authoritative": False,
        }
        return Patch({DECISION: decision}, approval_settled=True, team=event.team)
    if isinstance(event, FixApproved):
        a = event.payload
        facts: Facts = {
            RISK: _risk(a.risk),
            OUTCOME: {"state": "approved", "text": f"approved by {a.approved_by}", "at": at},
        }
        if a.approved_by != "policy":  # a person decided at the approval gate
            facts[DECISION] = {
                "decision": "approve",
                "by": a.approved_by,
                "reason": a.reason[:500],
                "at": at,
                "authoritative": True,
            }
        return Patch(facts, approval_settled=a.approved_by != "policy", team=event.team)
    if isinstance(event, FixRejected):
        r = event.payload
        facts = {
            OUTCOME: {"state": "rejected", "text": f"rejected by {r.rejected_by}", "reason": r.reason[:500], "at": at},
            DECISION: {
                "decision": "reject",
                "by": r.rejected_by,
                "reason": r.reason[:500],
                "at": at,
                "authoritative": True,
            },
        }
        if r.risk is not None:
            facts[RISK] = _risk(r.risk)
        return Patch(facts, approval_settled=True, team=event.team)
    if isinstance(event, PrOpened):
        opened_pr = event.payload
        pr = {
            "url": opened_pr.url,
            "title": opened_pr.title,
            "branch": opened_pr.branch,
            "number": opened_pr.number,
            "provider": opened_pr.provider,
            "at": at,
        }
        return Patch(
            {PR: pr, OUTCOME: {"state": "pr_opened", "text": "pull request opened", "at": at}}, team=event.team
        )
    if isinstance(event, PrEvent) and event.payload.action in ("merged", "closed"):
        e = event.payload
        pr_number = f"#{e.number}" if e.number is not None else ""
        by = f" by {e.actor}" if e.actor else ""
        if e.action == "merged":
            ended = {"state": "resolved", "text": f"fix merged (pull request {pr_number} merged{by})", "at": at}
        else:
            ended = {"state": "pr_closed", "text": f"pull request {pr_number} closed without merging{by}", "at": at}
        return Patch({OUTCOME: ended}, team=event.team)
    return Patch({})


def _diagnosis(event: DiagnosisReady) -> Facts:
    d = event.payload
    summary = d.report.summary if d.report is not None and d.report.summary.strip() else d.root_cause
    suspect = {"sha": d.suspect_commit.sha, "subject": d.suspect_commit.subject} if d.suspect_commit else None
    evidence = [{"file": e.file, "line": e.line, "function": e.function, "note": e.note[:300]} for e in d.evidence]
    return {
        "summary": summary[:2000],
        "root_cause": d.root_cause[:3000],
        "confidence": d.confidence,
        "strategy": d.strategy,
        "repo": d.repo,
        "suspect": suspect,
        "evidence": evidence[:LISTED],
        "next_steps": (d.report.next_steps[:LISTED] if d.report else []),
        "title": d.title,
        "at": event.occurred_at.isoformat(),
    }


def _risk(risk: RiskAssessment) -> Facts:
    return {"level": risk.level.value, "score": risk.score, "reasons": risk.reasons[:LISTED]}


def _run(run: TestRun) -> Facts:
    return {
        "passed": run.passed,
        "summary": run.summary[:300],
        "command": run.command[:300],
        "failed": run.failed_tests[:LISTED],
    }


def status_line(facts: Facts) -> str:
    """Where the incident stands, in a few words (the root message's first field, the fallback text)."""
    outcome = facts.get(OUTCOME) or {}
    state = outcome.get("state")
    decision = facts.get(DECISION) or {}
    if state == "resolved":
        return "resolved: fix merged"
    if state == "pr_closed":
        return "pull request closed without merging"
    if state == "pr_opened":
        return "pull request opened"
    if state == "rejected":
        return "fix rejected"
    if state == "failed":
        return "no fix found"
    if state == "approved":
        return "fix approved, opening the pull request"
    if facts.get(APPROVAL) and not decision:
        return "waiting for approval"
    if decision:
        return f"{'approved' if decision.get('decision') == 'approve' else 'rejected'} by {decision.get('by')}"
    fix = facts.get(FIX) or {}
    if fix.get("status") == "validated":
        return "fix validated, in review"
    if facts.get(DIAGNOSIS):
        return "diagnosed, looking for a fix"
    return "triaged, diagnosing"


def incident_label(incident_id: uuid.UUID) -> str:
    return f"pagerpatch incident {incident_id}"


@dataclass(frozen=True)
class ThreadState:
    """An incident's stored thread: its team, merged facts, what each message last showed (digests) and when an
    approval started (for the Linear sweep)."""

    incident_id: uuid.UUID
    team: str | None = None
    facts: Facts = field(default_factory=dict)
    rendered: dict[str, str] = field(default_factory=dict)
    approval_requested_at: datetime | None = None

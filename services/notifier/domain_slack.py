"""The Slack thread of an incident, rendered (pure): the root message (Block Kit), the detail replies, the approval
message with its buttons, the message metadata that finds them again, and what a Slack error means.

Slack's limits are kept: a header's text at most 150 characters, a section's 3,000, a message's blocks 50; user
text is escaped (`&`, `<`, `>`) so an alert title cannot ping a channel or forge a link.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from services.notifier.thread_facts import (
    APPROVAL,
    DECISION,
    DIAGNOSIS,
    FIX,
    OPENED,
    OUTCOME,
    PR,
    RISK,
    Facts,
    status_line,
)

ROOT_EVENT = "pagerpatch_incident"  # message metadata event_type of the root message
REPLY_EVENT = "pagerpatch_reply"  # ... of a thread reply (payload: incident_id, kind)
APPROVE_ACTION, REJECT_ACTION = "pagerpatch.approve", "pagerpatch.reject"  # ingest's providers/slack.py
APPROVAL_BLOCK = "pagerpatch_approval"
SECTION_LIMIT, HEADER_LIMIT, TEXT_LIMIT = 3000, 150, 3000
SEVERITY_ICON = {
    "P0": ":red_circle:",
    "P1": ":large_orange_circle:",
    "P2": ":large_yellow_circle:",
    "P3": ":white_circle:",
}
Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class SlackMessage:
    text: str  # the notification / fallback text
    blocks: Blocks

    def digest(self) -> str:
        """What was shown, as a hash: an update that would show the same message is not sent."""
        return hashlib.sha256(json.dumps([self.text, self.blocks], sort_keys=True).encode()).hexdigest()[:32]


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(t, SECTION_LIMIT)} for t in texts[:10]]}


def root_metadata(incident_id: uuid.UUID) -> dict[str, Any]:
    return {"event_type": ROOT_EVENT, "event_payload": {"incident_id": str(incident_id)}}


def reply_metadata(incident_id: uuid.UUID, kind: str) -> dict[str, Any]:
    return {"event_type": REPLY_EVENT, "event_payload": {"incident_id": str(incident_id), "kind": kind}}


def is_root_of(message: dict[str, Any], incident_id: uuid.UUID) -> bool:
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return meta.get("event_type") == ROOT_EVENT and payload.get("incident_id") == str(incident_id)


def is_reply_of(message: dict[str, Any], incident_id: uuid.UUID, kind: str) -> bool:
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return (
        meta.get("event_type") == REPLY_EVENT
        and payload.get("incident_id") == str(incident_id)
        and payload.get("kind") == kind
    )


def root_message(incident_id: uuid.UUID, facts: Facts) -> SlackMessage:
    """The root message: what the incident is and where it stands, one section per stage that has reported."""
    opened = facts.get(OPENED) or {}
    diagnosis = facts.get(DIAGNOSIS) or {}
    severity = opened.get("severity") or ""
    title = opened.get("title") or diagnosis.get("title") or f"incident {incident_id}"
    status = status_line(facts)
    head = f"{severity} {title}".strip()
    blocks: Blocks = [{"type": "header", "text": {"type": "plain_text", "text": clip(head, HEADER_LIMIT)}}]
    fields = [f"*Status*\n{escape(status)}"]
    if opened.get("service"):
        fields.append(f"*Service*\n{escape(opened['service'])}")
    if severity:
        fields.append(f"*Severity*\n{SEVERITY_ICON.get(severity, '')} {severity}".strip())
    repo = opened.get("repo") or diagnosis.get("repo")
    if repo:
        fields.append(f"*Repository*\n{escape(repo)}")
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": clip(f, 2000)} for f in fields]})
    if opened.get("reasons"):
        blocks.append(_context("*Triage:* " + escape("; ".join(opened["reasons"]))))
    for line in (
        _diagnosis_line(diagnosis),
        _fix_line(facts.get(FIX)),
        _risk_line(facts.get(RISK)),
        _decision_line(facts.get(DECISION)),
        _pr_line(facts.get(PR)),
        _outcome_line(facts.get(OUTCOME)),
        _linear_line(facts.get("linear")),
    ):
        if line:
            blocks.append(_section(line))
    blocks.append(_context(f"pagerpatch incident `{incident_id}` · `pagerpatch incidents show {incident_id}`"))
    text = clip(f"[{severity or 'incident'}] {escape(title)} — {escape(status)}", TEXT_LIMIT)
    return SlackMessage(text, blocks)


def _diagnosis_line(d: Facts) -> str:
    if not d:
        return ""
    line = f"*Diagnosis* (confidence {float(d.get('confidence') or 0):.2f}, {escape(str(d.get('strategy')))}): "
    line += escape(str(d.get("summary") or ""))
    suspect = d.get("suspect")
    if suspect:
        line += f"\nSuspect commit `{suspect['sha'][:12]}` {escape(suspect['subject'])}"
    return line


def _fix_line(f: Facts | None) -> str:
    if not f:
        return ""
    if f.get("status") == "failed":
        return f"*Fix*: none found — {escape(str(f.get('reason') or ''))}"
    proof = "proved" if f.get("proof") == "proved" else "UNPROVEN"
    tests = f.get("tests") or {}
    line = (
        f"*Fix*: {proof} ({escape(str(f.get('strategy')))}), {f.get('files_count', 0)} file(s) "
        f"+{f.get('added', 0)}/-{f.get('removed', 0)}"
    )
    if tests:
        line += f"\n*Tests*: {'passed' if tests.get('passed') else 'FAILED'} — {escape(str(tests.get('summary')))}"
    base = f.get("base_tests")
    if base:
        verdict = "passed" if base.get("passed") else "failed"
        line += f" (at the base commit: {verdict} — {escape(str(base.get('summary')))})"
    return line


def _risk_line(r: Facts | None) -> str:
    if not r:
        return ""
    reasons = "; ".join(r.get("reasons") or [])
    return f"*Risk*: {r.get('level')} (score {r.get('score')})" + (f" — {escape(reasons)}" if reasons else "")


def _decision_line(d: Facts | None) -> str:
    if not d:
        return ""
    verb = "Approved" if d.get("decision") == "approve" else "Rejected"
    reason = f": {escape(str(d['reason']))}" if d.get("reason") else ""
    return f"*Decision*: {verb} by {escape(str(d.get('by')))} at {_when(d.get('at'))}{reason}"


def _pr_line(p: Facts | None) -> str:
    if not p:
        return ""
    url, title = str(p.get("url") or ""), escape(str(p.get("title") or "pull request"))
    link = f"<{url}|{title}>" if url.startswith(("http://", "https://")) else f"{title} ({escape(url)})"
    return f"*Pull request*: {link} — branch `{escape(str(p.get('branch')))}`"


def _outcome_line(o: Facts | None) -> str:
    if not o:
        return ""
    reason = f": {escape(str(o['reason']))}" if o.get("reason") else ""
    return f"*Outcome*: {escape(str(o.get('text')))}{reason} ({_when(o.get('at'))})"


def _linear_line(issue: Facts | None) -> str:
    if not issue:
        return ""
    name = escape(str(issue.get("identifier") or "issue"))
    url = str(issue.get("url") or "")
    return f"*Linear*: <{url}|{name}>" if url.startswith(("http://", "https://")) else f"*Linear*: {name}"


def _when(at: Any) -> str:
    text = str(at or "")
    return text[:19].replace("T", " ") + " UTC" if text else "unknown time"


# ---------------------------------------------------------------------------------------------- replies

REPLY_KINDS = ("diagnosis.ready", "fix.validated", "fix.failed", "pr.opened")


def reply_message(kind: str, facts: Facts) -> SlackMessage | None:
    """The thread reply with an event's details (None: this event has no reply)."""
    if kind == "diagnosis.ready" and facts.get(DIAGNOSIS):
        d = facts[DIAGNOSIS]
        lines = ["*Diagnosis*", escape(str(d.get("root_cause") or ""))]
        for e in d.get("evidence") or []:
            where = f"`{escape(e['file'])}:{e['line']}`" + (
                f" in `{escape(e['function'])}`" if e.get("function") else ""
            )
            lines.append(f"• {where}" + (f" — {escape(e['note'])}" if e.get("note") else ""))
        if d.get("next_steps"):
            lines += ["*Next steps*", *[f"• {escape(s)}" for s in d["next_steps"]]]
        return SlackMessage(
            clip(f"Diagnosis: {escape(str(d.get('summary')))}", TEXT_LIMIT), [_section("\n".join(lines))]
        )
    if kind == "fix.validated" and (facts.get(FIX) or {}).get("status") == "validated":
        f = facts[FIX]
        lines = ["*Fix validated*", escape(str(f.get("proof_detail") or f.get("proof")))]
        lines += [f"• `{escape(p)}`" for p in f.get("files") or []]
        if f.get("fixed_tests"):
            lines += ["*Fixed tests*", *[f"• `{escape(t)}`" for t in f["fixed_tests"]]]
        failed = (f.get("tests") or {}).get("failed") or []
        if failed:
            lines += ["*Failing with the change*", *[f"• `{escape(t)}`" for t in failed]]
        return SlackMessage(
            "Fix validated: " + escape(str((f.get("tests") or {}).get("summary"))), [_section("\n".join(lines))]
        )
    if kind == "fix.failed" and (facts.get(FIX) or {}).get("status") == "failed":
        f = facts[FIX]
        lines = ["*No validated fix*", escape(str(f.get("reason")))]
        lines += [f"• {escape(t)}" for t in f.get("tried") or []]
        return SlackMessage(
            clip(f"No validated fix: {escape(str(f.get('reason')))}", TEXT_LIMIT), [_section("\n".join(lines))]
        )
    if kind == "pr.opened" and facts.get(PR):
        line = _pr_line(facts[PR])
        return SlackMessage(clip(f"Pull request opened: {facts[PR].get('url')}", TEXT_LIMIT), [_section(line)])
    return None


def refused_click_message(who: str) -> SlackMessage:
    text = (
        f"A click by {escape(who)} did not count: only the Slack users in `policy.slack_approvers` decide "
        "here. Ask one of them, or run `pagerpatch approve` / `pagerpatch reject`."
    )
    return SlackMessage(f"Click by {escape(who)} did not count", [_section(text)])


# ---------------------------------------------------------------------------------------------- approval


def approval_message(incident_id: uuid.UUID, facts: Facts) -> SlackMessage:
    """The approval request: what would change and why it waits; Approve / Reject buttons until someone decided,
    then who decided and when (the buttons are gone)."""
    risk, approval, decision = facts.get(RISK) or {}, facts.get(APPROVAL) or {}, facts.get(DECISION)
    lines = [f"*Approval needed*: {risk.get('level', '?')} risk (score {risk.get('score', '?')})"]
    if risk.get("reasons"):
        lines.append(escape("; ".join(risk["reasons"])))
    if approval.get("summary"):
        lines.append(escape(str(approval["summary"])))
    files = approval.get("files") or []
    if files:
        lines.append("Files: " + ", ".join(f"`{escape(p)}`" for p in files))
    blocks: Blocks = [_section("\n".join(lines))]
    if decision:
        blocks.append(_section(_decided(decision)))
        verb = "Approved" if decision.get("decision") == "approve" else "Rejected"
        text = f"{verb} by {escape(str(decision.get('by')))}"
        return SlackMessage(text, blocks)
    value = str(incident_id)
    blocks.append(
        {
            "type": "actions",
            "block_id": APPROVAL_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "style": "primary",
                    "value": value,
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    "type": "button",
                    "action_id": REJECT_ACTION,
                    "style": "danger",
                    "value": value,
                    "text": {"type": "plain_text", "text": "Reject"},
                },
            ],
        }
    )
    blocks.append(_context(f"Only `policy.slack_approvers` decide here; or `pagerpatch approve {incident_id}`"))
    return SlackMessage(f"Approval needed for incident {incident_id} ({risk.get('level', '?')} risk)", blocks)


def _decided(decision: Facts) -> str:
    icon, verb = (":white_check_mark:", "Approved") if decision.get("decision") == "approve" else (":x:", "Rejected")
    reason = f": {escape(str(decision['reason']))}" if decision.get("reason") else ""
    return f"{icon} *{verb}* by {escape(str(decision.get('by')))} at {_when(decision.get('at'))}{reason}"


# ---------------------------------------------------------------------------------------------- errors

ErrorClass = Literal["wait", "terminal"]
# Slack's documented errors that are ours or the workspace's to fix: retrying cannot help.
TERMINAL_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "msg_too_long",
        "invalid_blocks",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "restricted_action",
        "ekm_access_denied",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "thread_not_found",
    }
)
WAIT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "fatal_error", "internal_error", "request_timeout", "service_unavailable"}
)


def classify(status: int, error: str | None) -> ErrorClass:
    """What a failed Slack call means: 429 and 5xx wait (the message is retried in place), every other answer
    (channel_not_found, not_in_channel, invalid_auth, ...) is terminal and reported with its reason."""
    if status == 429 or status >= 500 or (error or "") in WAIT_ERRORS:
        return "wait"
    return "terminal"


def retry_after_s(headers: dict[str, Any], default: float = 5.0) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return default
    return default

"""The Linear issue of an incident, and what Linear's answers mean (pure).

An issue is opened when no fix was found (`fix.failed`) or a fix has waited for approval longer than
`linear.approval_wait_s`. Its description carries the incident id on a line of its own (`pagerpatch incident
<id>`), which is what finds it again (`issues(filter: {description: {contains: ...}})`) after a crash between
`issueCreate` and the outbox record.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from services.notifier.thread_facts import DIAGNOSIS, FIX, OPENED, RISK, Facts, incident_label

Why = Literal["fix.failed", "approval.waiting"]
TITLE_LIMIT = 250

# GraphQL `errors[].extensions.type` strings (linear/linear packages/sdk/src/error.ts) that are worth waiting on.
WAIT_TYPES = frozenset({"ratelimited", "lock timeout", "internal error", "network error"})


def issue_title(facts: Facts, why: Why) -> str:
    opened, diagnosis = facts.get(OPENED) or {}, facts.get(DIAGNOSIS) or {}
    title = opened.get("title") or diagnosis.get("title") or "incident"
    lead = "No fix found" if why == "fix.failed" else "Fix waiting for approval"
    severity = f"[{opened['severity']}] " if opened.get("severity") else ""
    text = f"{severity}{lead}: {title}"
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def issue_description(
    incident_id: uuid.UUID, facts: Facts, why: Why, *, console_url: str | None = None, waited_s: float | None = None
) -> str:
    """Markdown: why the issue exists, the diagnosis, what was tried, and the way back to the incident."""
    opened, diagnosis, fix, risk = (facts.get(k) or {} for k in (OPENED, DIAGNOSIS, FIX, RISK))
    lines = []
    if why == "fix.failed":
        lines += ["pagerpatch found no validated fix for this incident.", "", f"**Reason**: {fix.get('reason', '')}"]
        if fix.get("tried"):
            lines += ["", "**Tried**", *[f"- {t}" for t in fix["tried"]]]
    else:
        waited = f" for {waited_s / 60:.0f} min" if waited_s is not None else ""
        lines += [
            f"A fix has been waiting for approval{waited}.",
            f"**Risk**: {risk.get('level', '?')} (score {risk.get('score', '?')})",
        ]
        lines += [f"- {r}" for r in risk.get("reasons") or []]
    if opened:
        lines += ["", f"**Service**: {opened.get('service')} · **Severity**: {opened.get('severity')}"]
    if diagnosis:
        lines += [
            "",
            "## Diagnosis",
            str(diagnosis.get("summary") or ""),
            f"Confidence {float(diagnosis.get('confidence') or 0):.2f} ({diagnosis.get('strategy')})",
        ]
        suspect = diagnosis.get("suspect")
        if suspect:
            lines.append(f"Suspect commit `{suspect['sha'][:12]}` {suspect['subject']}")
        for e in diagnosis.get("evidence") or []:
            lines.append(f"- `{e['file']}:{e['line']}`" + (f" — {e['note']}" if e.get("note") else ""))
    lines += ["", "---", incident_label(incident_id), f"`pagerpatch incidents show {incident_id}`"]
    if console_url:
        lines.append(f"[Open in the pagerpatch console]({console_url.rstrip('/')}/incidents/{incident_id})")
    return "\n".join(lines)


def error_class(status: int, errors: list[dict[str, Any]]) -> Literal["ok", "wait", "terminal"]:
    """HTTP 429 / 5xx and the rate-limit and lock-timeout GraphQL errors wait; authentication, forbidden, invalid
    input and every other GraphQL error are terminal (retrying would send the same request to the same answer)."""
    if status == 429 or status >= 500:
        return "wait"
    for err in errors:
        ext = err.get("extensions") or {}
        kind = str(ext.get("type") or "").lower()
        code = str(ext.get("code") or "").upper()
        if kind in WAIT_TYPES or code == "RATELIMITED":
            return "wait"
    if errors or status >= 400:
        return "terminal"
    return "ok"


def error_reason(status: int, errors: list[dict[str, Any]]) -> str:
    for err in errors:
        ext = err.get("extensions") or {}
        message = ext.get("userPresentableMessage") or err.get("message") or ext.get("type") or "unknown error"
        kind = ext.get("type") or ext.get("code")
        return f"Linear: {message}" + (f" ({kind})" if kind else "")
    return f"Linear answered HTTP {status}"

"""What the notifier writes: pull request title/body and notification texts (pure)."""

from __future__ import annotations

import uuid

from schemas.events import FixApprovedPayload

BRANCH_PREFIX = "pagerpatch/"


def branch_name(incident_id: uuid.UUID) -> str:
    return f"{BRANCH_PREFIX}{incident_id}"


def pr_title(fix: FixApprovedPayload) -> str:
    d = fix.fix.diagnosis
    lines = fix.fix.commit_message.strip().splitlines()
    base = d.title or (lines[0] if lines else f"revert for {fix.fix.repo}")
    return f"fix: {base}"[:200]


def pr_body(incident_id: uuid.UUID, fix: FixApprovedPayload) -> str:
    f = fix.fix
    d = f.diagnosis
    lines = [
        f"Automated fix for incident `{incident_id}` ({d.severity.value}).",
        "",
        "## Diagnosis",
        d.root_cause,
        "",
        f"Confidence: {d.confidence:.2f} (strategy: {d.strategy})",
    ]
    if d.suspect_commit:
        lines.append(f"Suspect commit: `{d.suspect_commit.sha[:12]}` {d.suspect_commit.subject}")
    if d.evidence:
        lines += ["", "### Evidence"]
        for ev in d.evidence:
            where = f"{ev.file}:{ev.line}"
            fn = f" in `{ev.function}`" if ev.function else ""
            commit = f" (last changed in `{ev.commit[:12]}`)" if ev.commit else ""
            note = f" — {ev.note}" if ev.note else ""
            lines.append(f"- `{where}`{fn}{commit}{note}")
    lines += [
        "",
        "## Change",
        f"Strategy: {f.strategy}; {len(f.files_changed)} file(s), +{f.lines_added}/-{f.lines_removed}; "
        f"attempts: {f.attempts}",
        *[f"- `{p}`" for p in f.files_changed],
        "",
        "## Tests",
        f"`{f.tests.command}` in the {f.tests.sandbox} sandbox: {'passed' if f.tests.passed else 'FAILED'} — "
        f"{f.tests.summary} ({f.tests.duration_s:.1f}s)",
        "",
        "## Risk",
        f"{fix.risk.level.value} (score {fix.risk.score}); approved by {fix.approved_by}"
        + (f": {fix.reason}" if fix.reason else ""),
        *[f"- {r}" for r in fix.risk.reasons],
    ]
    return "\n".join(lines)

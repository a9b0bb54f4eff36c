"""What the fix agent is told (pure): the diagnosis, the investigation's structured report when there is one
(never the investigation's raw history), what the cheaper strategy found, and on a retry only the previous
attempt: its summary, its files, why it failed and the failing output's tail, cut with a visible marker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.events import DiagnosisReadyPayload
from schemas.fixes import FixAttempt

__all__ = ["OUTPUT_LIMIT", "Feedback", "fix_prompt", "tail"]

OUTPUT_LIMIT = 4000  # characters of the previous attempt's failing output given to the next one
_REPORT_FIELDS = ("summary", "root_cause", "evidence", "suspect_commit", "confidence", "fixability", "next_steps")


def marker(cut: int) -> str:
    return f"[TRUNCATED: the first {cut} characters of this output were cut; the end is shown]\n"


def tail(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The last `limit` characters of `text`, after a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    return marker(len(text) - limit) + text[-limit:]


@dataclass(frozen=True)
class Feedback:
    """The previous attempt, as the next one sees it (nothing older)."""

    attempt: FixAttempt
    output: str = ""  # the failing run's output (the regression test or the suite), cut by `tail`


def _diagnosis(d: DiagnosisReadyPayload) -> str:
    lines = [
        f"repository: {d.repo} at base commit {d.base_commit}",
        f"alert: {d.title}" if d.title else "",
        f"exception type: {d.exception_type}" if d.exception_type else "",
        f"root cause (diagnosis, confidence {d.confidence:.2f}): {d.root_cause}",
    ]
    if d.suspect_commit is not None:
        lines.append(f"suspect commit: {d.suspect_commit.sha[:12]} {d.suspect_commit.subject!r}")
    if d.evidence:
        lines.append("stack trace frames in the repository (innermost last):")
        lines += [
            f"  {e.file}:{e.line} in {e.function or '?'}" + (f" -- {e.note}" if e.note else "") for e in d.evidence
        ]
    if d.reproduction is not None and d.reproduction.vars:
        captured = json.dumps(d.reproduction.vars, sort_keys=True)[:1000]
        lines.append(f"captured arguments of {d.reproduction.function}() at the failure: {captured}")
    return "\n".join(line for line in lines if line)


def _report(d: DiagnosisReadyPayload) -> str:
    if d.report is None:
        return ""
    data = d.report.model_dump(mode="json", include=set(_REPORT_FIELDS))
    return f"<investigation_report>\n{json.dumps(data, indent=1, ensure_ascii=False)}\n</investigation_report>\n\n"


def _earlier(log: Sequence[FixAttempt]) -> str:
    if not log:
        return ""
    lines = [f"- {a.strategy} ({a.outcome}): {a.patch_summary}: {a.reason}"[:600] for a in log]
    return "<already_tried>\n" + "\n".join(lines) + "\n</already_tried>\n\n"


def _feedback(feedback: Feedback | None) -> str:
    if feedback is None:
        return ""
    a = feedback.attempt
    files = ", ".join(a.files) or "none"
    output = f"\n<failing_output>\n{tail(feedback.output)}\n</failing_output>" if feedback.output else ""
    return (
        f'<previous_attempt number="{a.number}">\nsummary: {a.patch_summary}\nfiles: {files}\n'
        f"why it failed ({a.outcome}): {a.reason}{output}\n</previous_attempt>\n\n"
        "Write a new patch against the base commit (the previous one was not kept) that avoids this failure.\n\n"
    )


TASK = """\
<task>
Fix the root cause with the smallest change. Read the files you change with read_file first (search_code finds
code) and quote `old` text exactly as the file has it, without read_file's line numbers. Then answer with the
answer tool:
- `edits`: exact replacements (each `old` occurs exactly once in its file at the base commit), or a unified `diff`;
- `regression_test`: a whole new test file ({{path, content}}) that calls the failing code the way the alert did.
  It must FAIL at the base commit with the alert's exception ({exception}) or a failing assertion, and PASS with
  your fix. Put it where the repository keeps its tests; only this file is run to check it. If no test can
  reproduce the failure, leave it out and say why in `no_reproduction_reason`;
- `summary`: one line saying what the fix changes and why.
Do not touch CI, workflow, deployment or dependency files unless the fix needs it.
Attempt {attempt} of {attempts}.
</task>"""


def fix_prompt(
    diagnosis: DiagnosisReadyPayload,
    *,
    attempt: int,
    attempts: int,
    earlier: Sequence[FixAttempt] = (),
    feedback: Feedback | None = None,
) -> str:
    """The fix agent's user prompt for one attempt."""
    exception = diagnosis.exception_type or "the alert's error"
    return (
        f"<diagnosis>\n{_diagnosis(diagnosis)}\n</diagnosis>\n\n"
        + _report(diagnosis)
        + _earlier(earlier)
        + _feedback(feedback)
        + TASK.format(exception=exception, attempt=attempt, attempts=attempts)
    )

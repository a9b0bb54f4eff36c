"""What `incidents show` says about the work on an incident, read from the events the stages produced (pure).

A person deciding on a fix needs the suspect, the root cause and how sure diagnosis is, what was tried and set
aside, whether the fix is proved, the tests before and after, and the risk; all of it is in the stages' events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from schemas.envelope import Event
from schemas.events import (
    ApprovalRequested,
    DiagnosisReady,
    FixApproved,
    FixFailed,
    FixRejected,
    FixValidated,
    FixValidatedPayload,
    RiskAssessment,
    SuspectCommit,
    TestRun,
)

E = TypeVar("E", bound=Event[Any])
TESTS_SHOWN = 5


def latest(events: Sequence[Event[Any]], kind: type[E]) -> E | None:
    """The last event of `kind` (events are in the order they happened)."""
    found = [e for e in events if isinstance(e, kind)]
    return found[-1] if found else None


def first_tests(tests: Iterable[str], shown: int = TESTS_SHOWN) -> str:
    """`a, b, c (and 4 more)`: the first test ids and how many more there are."""
    names = list(tests)
    more = f" (and {len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def commit_line(commit: SuspectCommit) -> str:
    return f"{commit.sha[:12]} {commit.subject}"


def run_line(run: TestRun) -> str:
    """`passed in 3.2s (bubblewrap): 12 passed` plus the first failing tests, when there are any."""
    verdict = "passed" if run.passed else "timed out" if run.exit_code is None else f"failed (exit {run.exit_code})"
    line = f"{verdict} in {run.duration_s:.1f}s ({run.sandbox})" + (f": {run.summary}" if run.summary else "")
    if run.failed_tests:
        line += f"; failing: {first_tests(run.failed_tests)}"
    return line


def risk_of(events: Sequence[Event[Any]]) -> RiskAssessment | None:
    """Review's last risk assessment, whichever decision carried it."""
    for event in reversed(events):
        if isinstance(event, ApprovalRequested | FixApproved):
            return event.payload.risk
        if isinstance(event, FixRejected) and event.payload.risk is not None:
            return event.payload.risk
    return None


def validated_fix(events: Sequence[Event[Any]]) -> FixValidatedPayload | None:
    """The fix as last validated (a later approval carries the same payload)."""
    for event in reversed(events):
        if isinstance(event, FixValidated):
            return event.payload
        if isinstance(event, FixApproved):
            return event.payload.fix
    return None


def patch_of(events: Sequence[Event[Any]]) -> str | None:
    """The validated fix's patch, for `incidents show --diff`."""
    fix = validated_fix(events)
    return fix.patch if fix else None


def fix_lines(fix: FixValidatedPayload) -> list[str]:
    """Proof, tests before and after, and what the revert adds and removes."""
    proof = "proved" if fix.proof == "proved" else "UNPROVEN"
    lines = [f"proof: {proof}" + (f": {fix.proof_detail}" if fix.proof_detail else "")]
    if fix.reverted is not None:
        lines.append(f"reverted: {commit_line(fix.reverted)}")
    lines.append(f"fix: {fix.strategy}, {len(fix.files_changed)} file(s), +{fix.lines_added} -{fix.lines_removed}, "
                 f"{fix.attempts} attempt(s)")  # fmt: skip
    lines.append("tests at the base: " + (run_line(fix.base_tests) if fix.base_tests else "not run"))
    lines.append("tests with the fix: " + run_line(fix.tests))
    if fix.fixed_tests:
        lines.append(f"fixed tests (failing at the base, passing now): {first_tests(fix.fixed_tests)}")
    if fix.removed_tests:
        lines.append(f"removed tests: this revert removes {len(fix.removed_tests)}: {first_tests(fix.removed_tests)}")
    if fix.regression_test:
        lines.append("regression test: added with the fix (see --diff)")
    return lines


def incident_report(events: Sequence[Event[Any]]) -> list[str]:
    """The lines `incidents show` prints between the incident's header and its timeline."""
    lines: list[str] = []
    diagnosis = latest(events, DiagnosisReady)
    if diagnosis is not None:
        d = diagnosis.payload
        lines.append("suspect: " + (commit_line(d.suspect_commit) if d.suspect_commit else "none"))
        lines.append(f"root cause: {d.root_cause}")
        lines.append(f"confidence: {d.confidence:.2f}  strategy: {d.strategy}  base: {d.base_commit[:12]}")
        if d.evidence:
            lines.append("evidence:")
            for ev in d.evidence:
                where = f"{ev.file}:{ev.line}" + (f" in {ev.function}" if ev.function else "")
                by = f" (last changed by {ev.commit[:12]})" if ev.commit else ""
                lines.append(f"  - {where}{by}" + (f": {ev.note}" if ev.note else ""))
    failed = latest(events, FixFailed)
    tried = [*(diagnosis.payload.tried if diagnosis else []), *(failed.payload.tried if failed else [])]
    if tried:
        lines.append("tried:")
        lines.extend(f"  - {t}" for t in tried)
    fix = validated_fix(events)
    if fix is not None:
        lines.extend(fix_lines(fix))
    outcome = next((e for e in reversed(events) if isinstance(e, FixFailed | FixValidated)), None)
    if isinstance(outcome, FixFailed):  # the last word of fixgen (a later retry may have validated a fix)
        lines.append(f"fix failed: {outcome.payload.reason}")
        if outcome.payload.tests is not None:
            lines.append("tests: " + run_line(outcome.payload.tests))
    risk = risk_of(events)
    if risk is not None:
        reasons = "; ".join(risk.reasons)
        lines.append(f"risk: {risk.level} (score {risk.score})" + (f": {reasons}" if reasons else ""))
    return lines

"""The strategy chain's record and verdicts (pure): each attempt as a `FixAttempt`, the model patch's
fix.validated, and what the chain answers when the model's attempts are over (docs/fixgen.md).

revert-and-test comes first; a *proved* revert is the answer. Otherwise the model-patch attempts run; the first
that holds is the answer. When none holds: an unproven revert is still the answer (it waits at the gate), else
fix.failed names every attempt's reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from pagerpatch.git.workspace import patch_stats
from pagerpatch.sandbox import TestReport
from schemas.events import DiagnosisReadyPayload, FixFailedPayload, FixValidatedPayload, SuspectCommit, TestRun
from schemas.fixes import AttemptOutcome, FixAttempt
from services.fixgen.domain.payloads import REASON_LIMIT, TRIED_CHARS, fix_failed, test_run_of
from services.fixgen.domain.regression import Reproduced

__all__ = [
    "MODEL_PATCH",
    "REVERT",
    "attempt",
    "chain_failed",
    "failure_line",
    "patch_proof",
    "patch_validated",
    "revert_reproduction",
    "revert_summary",
    "revert_validated",
    "with_log",
]

REVERT = "revert-and-test"
MODEL_PATCH = "model-patch"
_FILES_KEPT = 50


def attempt(
    number: int,
    strategy: str,
    outcome: AttemptOutcome,
    reason: str = "",
    summary: str = "",
    files: Sequence[str] = (),
) -> FixAttempt:
    """One attempt of the log, cut to the sizes the event allows."""
    return FixAttempt(
        number=number,
        strategy=strategy,
        outcome=outcome,
        reason=reason[:2000],
        patch_summary=summary[:1000],
        files=[f[:1000] for f in files][:_FILES_KEPT],
    )


def revert_summary(suspect: SuspectCommit) -> str:
    return f"revert {suspect.sha[:12]} {suspect.subject!r}"


def revert_validated(number: int, fix: FixValidatedPayload) -> FixAttempt:
    """The revert that became fix.validated, as an attempt (proved or unproven)."""
    summary = revert_summary(fix.reverted) if fix.reverted is not None else "revert"
    return attempt(number, REVERT, fix.proof, fix.proof_detail, summary, fix.files_changed)


def failure_line(a: FixAttempt) -> str:
    """One `tried` line for a model attempt (fix.failed carries each attempt's reason)."""
    return f"attempt {a.number} ({a.strategy}, {a.outcome}): {a.reason}"[:TRIED_CHARS]


def revert_reproduction(
    regression_test: str | None, plan_reason: str | None, at_base: tuple[str, str] | None
) -> tuple[bool | None, str]:
    """What a revert's fix says about reproducing the failure: the captured call, or why it was not made."""
    if regression_test:
        return True, (
            "reproduced: the alert's captured call raises its exception at the base commit and not with the revert; "
            "it is committed as a regression test"
        )
    if plan_reason is not None:
        return None, f"no reproduction attempted for the revert: {plan_reason}"
    if at_base is not None and at_base[0] != "raised":
        return False, f"NOT REPRODUCED: the alert's captured call did not raise at the base commit ({at_base[1]})"
    return None, "the alert's captured call raises at the base commit, but the revert's proof rests on the tests"


def patch_proof(reproduced: Reproduced, fixed: Sequence[str], suite_passed_at_base: bool) -> tuple[bool, str]:
    """Whether a model patch is proved, and how: its reproduction, or the repository's failing tests it fixes."""
    parts: list[str] = []
    if reproduced.reproduced:
        parts.append(f"{reproduced.note}, and passes with the fix")
    if fixed:
        names = ", ".join(fixed[:5]) + (f" (and {len(fixed) - 5} more)" if len(fixed) > 5 else "")
        parts.append(f"{len(fixed)} failing at the base commit pass with the fix: {names}")
    if parts:
        if not reproduced.reproduced:  # the PR says so at the top, with the proof
            parts.append(reproduced.note)
        return True, "; ".join(parts)
    base = "passes at the base commit" if suite_passed_at_base else "fails at the base commit the same way"
    return False, f"UNPROVEN: the test suite {base} and with the fix, and {reproduced.note}"


def patch_validated(
    diagnosis: DiagnosisReadyPayload,
    *,
    incident_id: str,
    summary: str,
    patch: str,
    base: TestReport,
    after: TestReport,
    fixed: Sequence[str],
    reproduced: Reproduced,
    regression_test: str | None,
    attempts: int,
    removed_tests: Sequence[str] = (),
) -> FixValidatedPayload:
    """The model patch's fix.validated (its attempt log is added by the chain)."""
    stats = patch_stats(patch)
    proved, detail = patch_proof(reproduced, fixed, base.result.passed)
    message = (
        f"{summary}\n\nWritten by the pagerpatch fix agent for incident {incident_id} ({MODEL_PATCH}, attempt "
        f"{attempts}).\n\n{'Proved: ' + detail if proved else detail}.\n"
    )
    if not reproduced.reproduced:
        message += f"\n{reproduced.note}.\n"
    return FixValidatedPayload(
        repo=diagnosis.repo,
        base_commit=diagnosis.base_commit,
        strategy=MODEL_PATCH,
        patch=patch,
        commit_message=message[:REASON_LIMIT],
        files_changed=list(stats.files),
        lines_added=stats.added,
        lines_removed=stats.removed,
        tests=test_run_of(after),
        attempts=max(attempts, 1),
        diagnosis=diagnosis,
        proof="proved" if proved else "unproven",
        proof_detail=detail[:REASON_LIMIT],
        base_tests=test_run_of(base),
        fixed_tests=[test[:500] for test in fixed][:50],
        removed_tests=[test[:500] for test in removed_tests][:50],
        regression_test=regression_test[:REASON_LIMIT] if regression_test else None,
        reproduced=reproduced.reproduced,
        reproduction_note=reproduced.note[:REASON_LIMIT],
    )


def with_log(outcome: FixValidatedPayload, log: Sequence[FixAttempt], **update: object) -> FixValidatedPayload:
    """`outcome` carrying the whole attempt log (and any other `update`)."""
    return outcome.model_copy(update={"attempt_log": list(log)[:50], **update})


def chain_failed(
    repo: str,
    log: Sequence[FixAttempt],
    revert: FixFailedPayload,
    *,
    test_runs: int,
    last_run: TestRun | None,
    unavailable: str | None,
) -> FixFailedPayload:
    """fix.failed after every strategy: the revert's reasons and each model attempt's, in order."""
    model = [a for a in log if a.strategy == MODEL_PATCH]
    if unavailable is not None and not [a for a in model if a.outcome != "unavailable"]:
        reason = f"{revert.reason}; the fix agent is unavailable: {unavailable}"
    else:
        reasons = "; ".join(failure_line(a) for a in model)
        reason = f"{revert.reason}; no model patch held after {len(model)} attempt(s): {reasons}"
    tried = [*revert.tried, *(failure_line(a) for a in model)]
    failed = fix_failed(repo, reason, revert.attempts + test_runs, last_run or revert.tests, tried)
    return failed.model_copy(update={"attempt_log": list(log)[:50]})

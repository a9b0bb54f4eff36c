"""Fixgen's payloads without I/O: when a failed preparation is retried, why a fix failed, what a validated fix says.

Everything here takes plain values (a diagnosis, a sandbox result, a patch's text) and returns plain values, so the
use case stays a sequence of port calls and these rules are tested on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

from pagerpatch.git.workspace import GitError, patch_stats
from pagerpatch.sandbox import SandboxResult, TestReport
from schemas.events import DiagnosisReadyPayload, FixFailedPayload, FixValidatedPayload, SuspectCommit, TestRun
from services.fixgen.domain.proof import Verdict

STRATEGY = "revert-and-test"
PREPARE_ATTEMPTS = 3  # fresh worktrees tried in place before the breaker's slower retry takes over
REASON_LIMIT = 20_000  # characters of a fix.failed reason (conflict lists and test summaries can be long)
TRIED_LIMIT = 30  # entries of a `tried` list, each at most TRIED_CHARS
TRIED_CHARS = 500

NO_SUSPECT = "the diagnosis names no suspect commit, so there is nothing to revert"
NO_SANDBOX = "no sandbox is available to run the tests"


def retry_preparation(error: BaseException, attempt: int) -> bool:
    """Whether preparing the revert again, in a fresh worktree, is the answer to `error` after `attempt` tries.

    A lock race with another git process or a working tree that vanished is our own hiccup, never a verdict on
    the commit: it is retried in place, then left to the breaker (the message waits) -- never a fix.failed.
    """
    retryable = isinstance(error, FileNotFoundError) or (isinstance(error, GitError) and error.contention)
    return retryable and attempt < PREPARE_ATTEMPTS


def no_sandbox_reason(problem: str | None) -> str:
    """Why the tests cannot run: the sandbox's own explanation (with its fix) when there is one."""
    return problem or NO_SANDBOX


def conflict_reason(suspect_sha: str, error: str) -> str:
    return f"reverting {suspect_sha[:12]} does not apply cleanly: {error}"


def no_suspect_reason(set_aside: Sequence[str]) -> str:
    """Why there is nothing to revert, with what the diagnosis considered and set aside (when it says)."""
    if not set_aside:
        return NO_SUSPECT
    return f"{NO_SUSPECT}; the diagnosis set aside: " + "; ".join(set_aside)


def setup_reason(detail: str) -> str:
    return f"the repository's environment could not be made, so no test ran: {detail}"


def tried_entry(suspect: SuspectCommit, reason: str) -> str:
    """One line of `tried`: the commit, its subject and why it was set aside."""
    return f"{suspect.sha[:12]} {suspect.subject!r}: {reason}"[:TRIED_CHARS]


def nothing_fixes_reason(tried: Sequence[str]) -> str:
    """fix.failed's reason when every candidate was set aside: the one reason, or a summary of them all."""
    if len(tried) == 1:
        return tried[0].split(": ", 1)[-1]
    return f"none of the {len(tried)} candidate commits gives a fix: " + "; ".join(tried)


def fix_failed(
    repo: str, reason: str, attempts: int = 0, tests: TestRun | None = None, tried: Sequence[str] = ()
) -> FixFailedPayload:
    """The fix.failed payload; attempts counts test runs (0 when no candidate fix got as far as the tests)."""
    kept = [entry[:TRIED_CHARS] for entry in tried][:TRIED_LIMIT]
    return FixFailedPayload(repo=repo, reason=reason[:REASON_LIMIT], attempts=attempts, tests=tests, tried=kept)


def revert_message(suspect: SuspectCommit, incident_id: str, verdict: Verdict | None = None) -> str:
    """The revert's commit message: git's own wording plus why pagerpatch made it, and how far that is proved."""
    why = f"The stack trace of incident {incident_id} points at lines this commit changed."
    if verdict is None:
        proof = "The repository's tests pass with it reverted."
    elif verdict.kind == "proved":
        proof = f"Proved: {verdict.detail}."
    else:
        proof = f"{verdict.detail}."
    return f'Revert "{suspect.subject}"\n\nThis reverts commit {suspect.sha}.\n\n{why} {proof}'


def test_run(result: SandboxResult, failed_tests: Sequence[str] = ()) -> TestRun:
    """The event's record of a test run, cut to the sizes the event schema allows."""
    return TestRun(
        command=result.command[:1000],
        passed=result.passed,
        exit_code=result.exit_code,
        summary=result.summary[:500],
        duration_s=round(result.duration_s, 3),
        output_tail=result.output[-8000:],
        sandbox=result.backend,
        failed_tests=[test[:500] for test in failed_tests[:50]],
    )


def test_run_of(report: TestReport) -> TestRun:
    """A test run with its first failing tests named (when the runner reported tests one by one)."""
    return test_run(report.result, report.failed_tests)


def fix_validated(
    diagnosis: DiagnosisReadyPayload,
    suspect: SuspectCommit,
    repo: str,
    patch: str,
    tests: TestRun,
    incident_id: str,
    *,
    verdict: Verdict | None = None,
    base_tests: TestRun | None = None,
    removed_tests: Sequence[str] = (),
    regression_test: str | None = None,
    attempts: int = 1,
) -> FixValidatedPayload:
    """The fix.validated payload: the patch, its size, the commit message and how far the fix is proved."""
    stats = patch_stats(patch)
    return FixValidatedPayload(
        repo=repo,
        base_commit=diagnosis.base_commit,
        strategy=STRATEGY,
        patch=patch,
        commit_message=revert_message(suspect, incident_id, verdict)[:REASON_LIMIT],
        files_changed=list(stats.files),
        lines_added=stats.added,
        lines_removed=stats.removed,
        tests=tests,
        attempts=max(attempts, 1),
        diagnosis=diagnosis,
        proof="proved" if verdict is not None and verdict.kind == "proved" else "unproven",
        proof_detail=(verdict.detail if verdict else "")[:REASON_LIMIT],
        base_tests=base_tests,
        fixed_tests=[test[:500] for test in (verdict.fixed_tests if verdict else ())][:50],
        removed_tests=[test[:500] for test in removed_tests][:50],
        regression_test=regression_test[:REASON_LIMIT] if regression_test else None,
        reverted=suspect,
    )

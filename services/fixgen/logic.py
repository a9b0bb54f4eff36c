"""Fixgen decisions that need no I/O: commit messages and test-run records."""

from __future__ import annotations

from pagerpatch.sandbox import SandboxResult
from schemas.events import SuspectCommit, TestRun


def revert_message(suspect: SuspectCommit, incident_id: str) -> str:
    return (
        f'Revert "{suspect.subject}"\n\n'
        f"This reverts commit {suspect.sha}.\n\n"
        f"The stack trace of incident {incident_id} points at lines this commit changed; the repository's "
        "tests pass with it reverted."
    )


def test_run(result: SandboxResult) -> TestRun:
    return TestRun(
        command=result.command[:1000],
        passed=result.passed,
        exit_code=result.exit_code,
        summary=result.summary[:500],
        duration_s=round(result.duration_s, 3),
        output_tail=result.output[-8000:],
        sandbox=result.backend,
    )

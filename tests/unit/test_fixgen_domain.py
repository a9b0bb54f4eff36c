"""Fixgen's pure rules: which preparation errors are retried, and how results become event payloads."""

from __future__ import annotations

import pytest

from pagerpatch.git.workspace import GitError
from schemas.events import SuspectCommit
from services.fixgen import domain
from services.fixgen.memory import sandbox_result

LOCKED = GitError(("revert",), 128, "fatal: Unable to create '/w/.git/index.lock': File exists.")
VANISHED_DIR = GitError(("revert",), 128, "fatal: cannot create directory at 'ledger': No such file or directory")
REFUSED = GitError(("fetch",), 128, "fatal: couldn't find remote ref main")


@pytest.mark.parametrize(
    ("error", "attempt", "retry"),
    [
        (LOCKED, 1, True),
        (LOCKED, 2, True),
        (LOCKED, 3, False),  # the third failure goes to the breaker
        (VANISHED_DIR, 1, True),
        (FileNotFoundError("/w/fix-revert"), 2, True),
        (FileNotFoundError("/w/fix-revert"), 3, False),
        (REFUSED, 1, False),  # not a race: retrying in place would only repeat it
        (PermissionError("/w"), 1, False),
        (ValueError("unsafe workspace name"), 1, False),
    ],
)
def test_which_preparation_errors_are_retried_in_place(error: BaseException, attempt: int, retry: bool) -> None:
    assert domain.retry_preparation(error, attempt) is retry


def test_a_fix_failed_reason_is_cut_to_what_the_event_allows() -> None:
    payload = domain.fix_failed("calc", "x" * 30_000)
    assert len(payload.reason) == domain.REASON_LIMIT and payload.attempts == 0 and payload.tests is None


def test_a_test_run_keeps_the_tail_of_the_output_and_the_backend() -> None:
    output = "noise\n" * 3000 + "==== 2 failed, 3 passed in 1.00s ====\n"
    run = domain.test_run(sandbox_result("make test", exit_code=2, output=output))
    assert (run.command, run.passed, run.exit_code, run.sandbox) == ("make test", False, 2, "unsandboxed")
    assert len(run.output_tail) == 8000 and run.output_tail.endswith("1.00s ====\n")
    assert run.summary == "2 failed, 3 passed in 1.00s" and run.duration_s == 1.25


def test_a_timed_out_run_is_not_passed_even_with_exit_code_zero() -> None:
    run = domain.test_run(sandbox_result("make test", exit_code=None, timed_out=True, output="slow\n"))
    assert not run.passed and run.exit_code is None and run.summary.startswith("timed out after")


def test_the_revert_message_says_what_was_reverted_and_why() -> None:
    suspect = SuspectCommit(sha="c" * 40, subject="Cache totals")
    message = domain.revert_message(suspect, "inc-1")
    assert message.splitlines()[0] == 'Revert "Cache totals"'
    assert f"This reverts commit {'c' * 40}." in message and "incident inc-1" in message


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (domain.conflict_reason("d" * 40, "conflicts in: a.py"), f"reverting {'d' * 12} does not apply cleanly: "),
        (domain.no_sandbox_reason("install bwrap"), "install bwrap"),
        (domain.no_sandbox_reason(None), domain.NO_SANDBOX),
    ],
)
def test_reasons_name_the_short_sha_or_the_sandbox_problem(reason: str, expected: str) -> None:
    assert reason.startswith(expected)

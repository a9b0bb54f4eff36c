"""Fixgen's use case on memory ports: verdicts about the commit become fix.failed, our own hiccups are retried in
place and then raised for the breaker (the message waits), and the worktree never outlives the call (no servers).
The candidates' fall-through, the proof against the baseline and the reproduction: test_fixgen_candidates.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pagerpatch.git.workspace import GitError, RevertResult
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Poison, Transient
from pagerpatch.kernel.runtime import StageContext
from pagerpatch.sandbox import SandboxError, SandboxResult
from pagerpatch.settings import Settings
from schemas import streams
from schemas.events import (
    DiagnosisReady,
    DiagnosisReadyPayload,
    FixFailed,
    FixFailedPayload,
    FixValidated,
    FixValidatedPayload,
)
from services.fixgen import domain, handlers
from services.fixgen.memory import (
    DIFF,
    RecordingBreakers,
    ScriptedReverter,
    ScriptedTestRunner,
    sandbox_result,
)
from services.fixgen.ports import GIT_FAILURES, SANDBOX_FAILURES
from services.fixgen.usecase import FixGenerator
from tests.support.fixgen import BASE, INCIDENT, PASSED, REPO, SUSPECT, TIMEOUT_S, diagnosis, fixgen, run

FAILED = sandbox_result(
    REPO.test_command, exit_code=1, output="============ 1 failed, 11 passed in 0.40s ===========\n"
)


def contention() -> GitError:
    return GitError(("revert",), 128, "fatal: Unable to create '/w/.git/index.lock': File exists.")


# ---------------------------------------------------------------- verdicts before any worktree


async def test_no_suspect_commit_fails_without_touching_git_or_the_sandbox() -> None:
    reverter, runner = ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(PASSED)
    outcome = await run(fixgen(reverter, runner), diagnosis(suspect=None))
    assert outcome == FixFailedPayload(repo="calc", reason=domain.NO_SUSPECT, attempts=0, tests=None)
    assert reverter.refreshed == [] and reverter.prepared == [] and runner.runs == []


BWRAP_MISSING = "bubblewrap (bwrap) is required ... `apt install bubblewrap`"


@pytest.mark.parametrize(("problem", "reason"), [(BWRAP_MISSING, BWRAP_MISSING), (None, domain.NO_SANDBOX)])
async def test_no_sandbox_fails_with_the_sandbox_problem(problem: str | None, reason: str) -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    outcome = await run(fixgen(reverter, None, problem))
    assert isinstance(outcome, FixFailedPayload)
    assert (outcome.reason, outcome.attempts, outcome.tests) == (reason, 0, None)
    assert reverter.refreshed == [] and reverter.prepared == []


# ---------------------------------------------------------------- preparing the revert


async def test_contention_and_a_vanished_worktree_are_retried_in_place_then_the_fix_validates() -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha, after=[contention(), FileNotFoundError("/w/ledger")])
    breakers = RecordingBreakers()
    outcome = await run(fixgen(reverter, ScriptedTestRunner(PASSED)), breakers=breakers)
    assert isinstance(outcome, FixValidatedPayload)
    assert reverter.script == []  # all three attempts were used
    assert reverter.refreshed == ["calc"]  # the clone is refreshed once, not per attempt
    # base worktree, environment, baseline run; then the revert (its in-place retries are one breaker call), tests
    assert breakers.dependencies == ["git:calc", "sandbox", "sandbox", "git:calc", "sandbox"]
    assert reverter.leftover == [] and len(reverter.removed) == 2


async def test_contention_while_checking_out_the_base_is_retried_in_place_too() -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    reverter.checkout_errors = [contention()]
    outcome = await run(fixgen(reverter, ScriptedTestRunner(PASSED)))
    assert isinstance(outcome, FixValidatedPayload) and len(reverter.checkouts) == 1


async def test_contention_three_times_is_raised_for_the_breaker_never_a_fix_failed() -> None:
    errors = [contention(), contention(), contention()]
    reverter = ScriptedReverter.reverting(SUSPECT.sha, after=errors)
    runner = ScriptedTestRunner(PASSED)
    with pytest.raises(Transient) as caught:
        await run(fixgen(reverter, runner))
    assert caught.value.__cause__ is errors[-1]
    assert len(reverter.script) == 1  # the clean revert after them was never reached: three attempts, no more
    assert reverter.prepared == [] and runner.after_runs == []
    assert reverter.leftover == []  # the base worktree is gone too


async def test_a_git_error_that_is_not_contention_is_not_retried_in_place() -> None:
    refused = GitError(("fetch", "origin"), 128, "fatal: couldn't find remote ref main")
    reverter = ScriptedReverter.reverting(SUSPECT.sha, after=[refused])
    with pytest.raises(Transient) as caught:
        await run(fixgen(reverter, ScriptedTestRunner(PASSED)))
    assert caught.value.__cause__ is refused
    assert len(reverter.script) == 1  # one attempt only


async def test_an_unexpected_error_while_preparing_propagates_untouched() -> None:
    bug = ValueError("unsafe workspace name '..'")
    reverter = ScriptedReverter.reverting(SUSPECT.sha, after=[bug])
    with pytest.raises(ValueError) as caught:
        await run(fixgen(reverter, ScriptedTestRunner(PASSED)))
    assert caught.value is bug and len(reverter.script) == 1


async def test_a_revert_that_conflicts_fails_without_running_the_tests_and_removes_the_worktree() -> None:
    clash = RevertResult(ok=False, reverted=SUSPECT.sha, conflicted_files=("app/calc.py",), error="conflicts in app")
    reverter, runner = ScriptedReverter([clash]), ScriptedTestRunner(PASSED)
    outcome = await run(fixgen(reverter, runner))
    reason = f"reverting {SUSPECT.sha[:12]} does not apply cleanly: conflicts in app"
    assert outcome == FixFailedPayload(
        repo="calc", reason=reason, attempts=0, tried=[f"{SUSPECT.sha[:12]} {SUSPECT.subject!r}: {reason}"]
    )
    assert runner.after_runs == []  # only the baseline ran
    assert reverter.prepared and reverter.leftover == []


# ---------------------------------------------------------------- the tests


async def test_failing_tests_fail_the_fix_with_the_test_run() -> None:
    reverter, runner = ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(FAILED)
    outcome = await run(fixgen(reverter, runner))
    assert isinstance(outcome, FixFailedPayload)
    assert outcome.reason == f"the tests fail with {SUSPECT.sha[:12]} reverted: 1 failed, 11 passed in 0.40s"
    assert outcome.attempts == 1
    assert outcome.tests is not None and not outcome.tests.passed and outcome.tests.exit_code == 1
    assert outcome.tests.summary == "1 failed, 11 passed in 0.40s"
    assert runner.after_runs == [(REPO.test_command, reverter.prepared[0], TIMEOUT_S)]
    assert [run[1] for run in runner.runs] == [reverter.checkouts[0], reverter.prepared[0]]  # baseline first
    assert reverter.leftover == []


async def test_tests_failing_both_ways_without_per_test_results_are_refused() -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    outcome = await run(fixgen(reverter, ScriptedTestRunner(FAILED, baseline=FAILED)))
    assert isinstance(outcome, FixFailedPayload)
    assert outcome.reason.startswith(f"the tests still fail with {SUSPECT.sha[:12]} reverted: 1 failed, 11 passed")
    assert "without per-test results" in outcome.reason


async def test_tests_that_time_out_fail_the_fix() -> None:
    slow = sandbox_result(REPO.test_command, exit_code=None, timed_out=True, output="collected 12 items\n")
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    outcome = await run(fixgen(reverter, ScriptedTestRunner(slow)))
    assert isinstance(outcome, FixFailedPayload) and outcome.tests is not None
    assert "timed out after 1.2s" in outcome.reason and outcome.tests.exit_code is None
    assert reverter.leftover == []


async def test_passing_tests_validate_the_revert_with_its_patch_stats_and_message() -> None:
    reverter, runner = ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(PASSED)
    breakers = RecordingBreakers()
    d = diagnosis()
    outcome = await run(fixgen(reverter, runner), d, breakers)
    assert isinstance(outcome, FixValidatedPayload)
    assert (outcome.repo, outcome.base_commit, outcome.strategy, outcome.attempts) == (
        "calc",
        BASE,
        "revert-and-test",
        1,
    )
    assert outcome.patch == DIFF
    assert (outcome.files_changed, outcome.lines_added, outcome.lines_removed) == (["app/calc.py"], 1, 1)
    # The suite passes both ways: validated, but said plainly to be unproven (review never auto-approves it).
    assert outcome.proof == "unproven" and outcome.proof_detail.startswith("UNPROVEN: the test suite passes")
    assert "no reproduction: the alert carried no local variables" in outcome.proof_detail
    assert outcome.commit_message.startswith(f'Revert "{SUSPECT.subject}"') and str(INCIDENT) in outcome.commit_message
    assert "UNPROVEN" in outcome.commit_message
    assert outcome.tests.passed and outcome.tests.summary == "12 passed in 0.31s"
    assert outcome.base_tests is not None and outcome.base_tests.passed
    assert outcome.reverted == SUSPECT and outcome.fixed_tests == [] and outcome.regression_test is None
    assert outcome.diagnosis == d
    assert reverter.diffs == [(reverter.prepared[0], BASE)]
    assert reverter.leftover == []
    assert breakers.calls == [
        ("git:calc", GIT_FAILURES),  # refresh + base worktree
        ("sandbox", SANDBOX_FAILURES),  # environment
        ("sandbox", SANDBOX_FAILURES),  # baseline
        ("git:calc", GIT_FAILURES),  # the revert
        ("sandbox", SANDBOX_FAILURES),  # tests with it
    ]


@pytest.mark.parametrize("failure", [SandboxError("bubblewrap could not start the command"), OSError("no fds")])
async def test_a_sandbox_failure_is_raised_for_the_breaker_and_the_worktree_is_removed(failure: Exception) -> None:
    reverter, runner = ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(failure)
    with pytest.raises(Transient) as caught:
        await run(fixgen(reverter, runner))
    assert caught.value.__cause__ is failure
    assert reverter.prepared and reverter.leftover == []


async def test_the_worktree_is_removed_when_the_diff_fails_too() -> None:
    class BrokenDiff(ScriptedReverter):
        async def diff(self, worktree: Path, base_commit: str) -> str:
            raise GitError(("diff",), 128, "fatal: bad object")

    reverter = BrokenDiff.reverting(SUSPECT.sha)
    with pytest.raises(GitError):
        await run(fixgen(reverter, ScriptedTestRunner(PASSED)))
    assert reverter.prepared and reverter.leftover == []


# ---------------------------------------------------------------- the handler's guards and events


def context(gen: FixGenerator) -> StageContext[FixGenerator]:
    return StageContext(service="fixgen", consumer=streams.consumer("fixgen"), settings=Settings(),
                        breakers=Breakers(), deps=gen)  # fmt: skip


def ready(d: DiagnosisReadyPayload, incident: uuid.UUID | None = INCIDENT) -> DiagnosisReady:
    return DiagnosisReady.create(d, source="diagnosis", incident_id=incident)


@pytest.mark.parametrize(("outcome", "event_cls"), [(PASSED, FixValidated), (FAILED, FixFailed)])
async def test_the_handler_announces_the_outcome_as_the_next_event(
    outcome: SandboxResult, event_cls: type[FixValidated] | type[FixFailed]
) -> None:
    event = ready(diagnosis())
    out = await handlers.on_diagnosis(
        event, context(fixgen(ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(outcome)))
    )
    assert len(out) == 1 and isinstance(out[0], event_cls)
    assert (out[0].source, out[0].causation_id, out[0].incident_id) == ("fixgen", event.event_id, INCIDENT)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (ready(diagnosis(), incident=None), r"diagnosis\.ready without incident_id"),
        (ready(diagnosis().model_copy(update={"repo": "elsewhere"})), "'elsewhere' is not registered"),
    ],
)
async def test_the_handler_refuses_what_can_never_be_handled(event: DiagnosisReady, message: str) -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    with pytest.raises(Poison, match=message):
        await handlers.on_diagnosis(event, context(fixgen(reverter, ScriptedTestRunner(PASSED))))
    assert reverter.refreshed == [] and reverter.prepared == []

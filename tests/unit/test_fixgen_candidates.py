"""Fixgen's use case on memory ports, candidate by candidate: each set-aside revert is recorded with its reason and
the next is tried; a revert is proved by a test failing at the base and passing after it, or by the reproduction
from the failing frame's captured arguments; otherwise it is validated as plainly unproven (no servers)."""

from __future__ import annotations

import uuid

import pytest

from pagerpatch.git.workspace import RevertResult
from pagerpatch.sandbox import SandboxResult
from schemas.events import (
    DiagnosisReadyPayload,
    Evidence,
    FixFailedPayload,
    FixValidatedPayload,
    FrameVars,
    SuspectCommit,
)
from services.fixgen import domain
from services.fixgen.memory import (
    DIFF,
    RecordingBreakers,
    ScriptedReverter,
    ScriptedTestRunner,
    calc_diff,
    report,
    sandbox_result,
)
from services.fixgen.usecase import MAX_TEST_RUNS
from tests.support.fixgen import INCIDENT, PASSED, REPO, SUSPECT, diagnosis, fixgen, run

SECOND = SuspectCommit(sha="d" * 40, subject="Cache totals per cart")
THIRD = SuspectCommit(sha="e" * 40, subject="Round totals")
TRACE = [  # a trace from a test run: its innermost repository frame, then the test that called it
    Evidence(file="app/calc.py", line=2, function="total"),
    Evidence(file="tests/test_calc.py", line=5, function="test_total"),
]
DOCSTRING_ONLY = calc_diff('"""Sum of the items."""', '"""The sum of the items."""')
ELSEWHERE = DIFF.replace("app/calc.py", "app/report.py")


def with_candidates(*more: SuspectCommit, **update: object) -> DiagnosisReadyPayload:
    return diagnosis().model_copy(update={"candidates": list(more), "evidence": TRACE, **update})


def clean(*shas: str) -> list[RevertResult | BaseException]:
    return [RevertResult(ok=True, reverted=sha, commit="c" * 40) for sha in shas]


async def test_no_suspect_says_what_the_diagnosis_set_aside() -> None:
    d = diagnosis(suspect=None).model_copy(update={"tried": ["abc1234: only docstrings changed in the region"]})
    outcome = await run(fixgen(ScriptedReverter([]), ScriptedTestRunner(PASSED)), d)
    assert isinstance(outcome, FixFailedPayload)
    assert outcome.reason.startswith(domain.NO_SUSPECT) and "abc1234: only docstrings changed" in outcome.reason


async def test_a_failing_setup_is_a_fix_failed_with_its_output_and_no_revert() -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    runner = ScriptedTestRunner(PASSED, setup_failure="the set-up of calc failed (`pip install -e .`, exit 1): boom")
    outcome = await run(fixgen(reverter, runner))
    assert isinstance(outcome, FixFailedPayload) and outcome.attempts == 0
    assert "could not be made" in outcome.reason and "exit 1): boom" in outcome.reason
    assert runner.runs == [] and reverter.prepared == [] and reverter.leftover == []


async def test_a_test_failing_at_the_base_and_passing_after_proves_the_revert() -> None:
    base = report(
        REPO.test_command, {"tests/test_calc.py::test_total": "failed", "tests/test_calc.py::test_x": "passed"}
    )
    after = report(
        REPO.test_command, {"tests/test_calc.py::test_total": "passed", "tests/test_calc.py::test_x": "passed"}
    )
    outcome = await run(fixgen(ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(after, baseline=base)))
    assert isinstance(outcome, FixValidatedPayload) and outcome.proof == "proved"
    assert outcome.fixed_tests == ["tests/test_calc.py::test_total"]
    assert "pass with bbbbbbbbbbbb reverted: tests/test_calc.py::test_total" in outcome.proof_detail
    assert outcome.base_tests is not None and outcome.base_tests.failed_tests == ["tests/test_calc.py::test_total"]
    assert outcome.commit_message.splitlines()[-1].endswith("reverted: tests/test_calc.py::test_total.")


async def test_tests_failing_at_the_base_are_the_baseline_and_ignored() -> None:
    old = {"tests/test_py311.py::test_old": "failed", "tests/test_calc.py::test_x": "passed"}
    outcome = await run(
        fixgen(
            ScriptedReverter.reverting(SUSPECT.sha),
            ScriptedTestRunner(report(REPO.test_command, old), baseline=report(REPO.test_command, old)),
        )
    )
    assert isinstance(outcome, FixValidatedPayload) and outcome.proof == "unproven"
    assert "baseline, ignored: 1 fail at the base too: tests/test_py311.py::test_old" in outcome.proof_detail
    assert outcome.tests.failed_tests == ["tests/test_py311.py::test_old"]


async def test_a_revert_that_breaks_a_test_is_refused_by_name_and_the_next_candidate_is_tried() -> None:
    broken = report(
        REPO.test_command, {"tests/test_cart.py::test_cache": "failed", "tests/test_calc.py::test_x": "passed"}
    )
    fine = report(
        REPO.test_command, {"tests/test_cart.py::test_cache": "passed", "tests/test_calc.py::test_x": "passed"}
    )
    baseline = report(
        REPO.test_command, {"tests/test_cart.py::test_cache": "passed", "tests/test_calc.py::test_x": "passed"}
    )
    reverter = ScriptedReverter(clean(SUSPECT.sha, SECOND.sha))
    runner = ScriptedTestRunner(fine, baseline=baseline, afters=[broken])
    outcome = await run(fixgen(reverter, runner), with_candidates(SECOND))
    assert isinstance(outcome, FixValidatedPayload) and outcome.reverted == SECOND
    assert outcome.attempts == 2 and outcome.commit_message.startswith(f'Revert "{SECOND.subject}"')
    assert reverter.leftover == [] and len(reverter.prepared) == 2


async def test_every_candidate_set_aside_is_a_fix_failed_listing_each_reason() -> None:
    clash = RevertResult(ok=False, reverted=SUSPECT.sha, conflicted_files=("app/calc.py",), error="conflicts in: app")
    noop = RevertResult(ok=False, reverted=SECOND.sha, error="git revert of ddddddd failed: nothing to commit")
    broken = report(REPO.test_command, {"tests/test_cart.py::test_cache": "failed"})
    reverter = ScriptedReverter([clash, noop, *clean(THIRD.sha)])
    runner = ScriptedTestRunner(
        broken, baseline=report(REPO.test_command, {"tests/test_cart.py::test_cache": "passed"})
    )
    outcome = await run(fixgen(reverter, runner), with_candidates(SECOND, THIRD))
    assert isinstance(outcome, FixFailedPayload)
    assert outcome.reason.startswith("none of the 3 candidate commits gives a fix: ")
    assert [entry.split(":", 1)[0] for entry in outcome.tried] == [
        f"{SUSPECT.sha[:12]} {SUSPECT.subject!r}",
        f"{SECOND.sha[:12]} {SECOND.subject!r}",
        f"{THIRD.sha[:12]} {THIRD.subject!r}",
    ]
    assert "does not apply cleanly" in outcome.tried[0] and "changes nothing" in outcome.tried[1]
    assert (
        "breaks tests that do not fail at the base commit: 1 failed: tests/test_cart.py::test_cache"
        in (outcome.tried[2])
    )
    assert outcome.attempts == 1 and outcome.tests is not None
    assert outcome.tests.failed_tests == ["tests/test_cart.py::test_cache"]


@pytest.mark.parametrize(
    ("patch", "why"),
    [
        (DOCSTRING_ONLY, "changes only comments, docstrings, blank lines or formatting (app/calc.py)"),
        (
            ELSEWHERE,
            "touches no file on the stack trace's path (app/calc.py, tests/test_calc.py); it changes app/report.py",
        ),
        (DIFF.replace("app/calc.py", "tests/test_calc.py"), "changes only tests (tests/test_calc.py)"),
        ("", "changes nothing at the base commit (an empty diff)"),
    ],
)
async def test_a_revert_that_cannot_fix_the_failure_is_refused_before_any_test(patch: str, why: str) -> None:
    reverter = ScriptedReverter(clean(SUSPECT.sha), patches={SUSPECT.sha: patch})
    if patch == DOCSTRING_ONLY:
        reverter.sources["app/calc.py"] = (
            'def total(items):\n    """Sum of the items."""\n    return sum(items)\n',
            'def total(items):\n    """The sum of the items."""\n    return sum(items)\n',
        )
    runner = ScriptedTestRunner(PASSED)
    outcome = await run(fixgen(reverter, runner), with_candidates())
    assert isinstance(outcome, FixFailedPayload) and outcome.attempts == 0
    assert outcome.reason.startswith(f"reverting {SUSPECT.sha[:12]} ") and why in outcome.reason
    assert runner.after_runs == [] and reverter.leftover == []  # the refused revert never ran the tests


async def test_a_cosmetic_suspect_falls_through_to_the_next_candidate() -> None:
    reverter = ScriptedReverter(clean(SUSPECT.sha, SECOND.sha), patches={SUSPECT.sha: ELSEWHERE})
    runner = ScriptedTestRunner(PASSED)
    outcome = await run(fixgen(reverter, runner), with_candidates(SECOND))
    assert isinstance(outcome, FixValidatedPayload) and outcome.reverted == SECOND
    assert len(runner.after_runs) == 1


async def test_candidates_stop_after_the_test_run_limit() -> None:
    shas = ["1" * 40, "2" * 40, "3" * 40, "4" * 40]
    more = [SuspectCommit(sha=sha, subject=f"change {i}") for i, sha in enumerate(shas)]
    broken = report(REPO.test_command, {"tests/test_a.py::test_a": "failed"})
    runner = ScriptedTestRunner(broken, baseline=report(REPO.test_command, {"tests/test_a.py::test_a": "passed"}))
    outcome = await run(fixgen(ScriptedReverter(clean(SUSPECT.sha, *shas)), runner), with_candidates(*more))
    assert isinstance(outcome, FixFailedPayload) and outcome.attempts == MAX_TEST_RUNS
    assert len(runner.after_runs) == MAX_TEST_RUNS and len(outcome.tried) == 5
    assert outcome.tried[-1].endswith(f"not tried: {MAX_TEST_RUNS} candidates' tests already ran")


async def test_removed_tests_are_those_of_the_base_missing_after_the_revert() -> None:
    base = report(REPO.test_command, {"tests/test_calc.py::test_x": "passed", "tests/test_calc.py::test_new": "passed"})
    after = report(REPO.test_command, {"tests/test_calc.py::test_x": "passed"})
    outcome = await run(fixgen(ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(after, baseline=base)))
    assert isinstance(outcome, FixValidatedPayload) and outcome.removed_tests == ["tests/test_calc.py::test_new"]


async def test_the_baseline_is_run_once_per_base_commit_and_environment() -> None:
    gen = fixgen(ScriptedReverter(clean(SUSPECT.sha, SUSPECT.sha)), runner := ScriptedTestRunner(PASSED))
    await run(gen)
    await gen.revert_and_test(diagnosis(), REPO, uuid.uuid4(), RecordingBreakers())
    assert len(runner.runs) == 3  # one baseline, two runs with the revert
    assert len(runner.environments) == 2  # the environment is looked up each time (it is cached on disk)


async def test_the_repository_test_timeout_wins_over_the_sandbox_default() -> None:
    slow_repo = REPO.model_copy(update={"test_timeout_s": 900.0})
    runner = ScriptedTestRunner(PASSED)
    gen = fixgen(ScriptedReverter.reverting(SUSPECT.sha), runner)
    await gen.revert_and_test(diagnosis(), slow_repo, INCIDENT, RecordingBreakers())
    assert {timeout for _, _, timeout in runner.runs} == {900.0}


def reproducible(**update: object) -> DiagnosisReadyPayload:
    frame = FrameVars(file="/srv/app/app/calc.py", function="total", line=2, vars={"items": [1, 2]})
    return with_candidates(**{"reproduction": frame, "exception_type": "ZeroDivisionError", **update})


def said(outcome: str, code: int) -> SandboxResult:
    return sandbox_result("python script.py", exit_code=code, output=f"pagerpatch-reproduction: {outcome}\n")


async def test_the_reproduction_proves_the_revert_and_becomes_a_regression_test() -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    runner = ScriptedTestRunner(
        PASSED, reproduction={"base": said("raised ZeroDivisionError", 10), "after": said("returned", 0)}
    )
    outcome = await run(fixgen(reverter, runner), reproducible())
    assert isinstance(outcome, FixValidatedPayload) and outcome.proof == "proved"
    assert outcome.proof_detail.startswith("reproduced: total() with the captured arguments raises ZeroDivisionError")
    assert outcome.regression_test is not None and "def test_total_does_not_raise_zerodivisionerror_again" in (
        outcome.regression_test
    )
    assert 'FILE = "app/calc.py"' in outcome.regression_test or "FILE = 'app/calc.py'" in outcome.regression_test
    [(_, file, text, message)] = reverter.commits
    assert file == f"tests/test_pagerpatch_regression_{str(INCIDENT)[:8]}.py" and text == outcome.regression_test
    assert message.startswith(f"Add a regression test for incident {INCIDENT}")
    assert file in outcome.files_changed and len(runner.scripts) == 2


@pytest.mark.parametrize(
    ("base", "after", "detail"),
    [
        (said("returned", 0), None, "at the base commit total() with the captured arguments did not raise"),
        (said("impossible: LookupError argument 'items' was not captured", 12), None, "was not captured"),
        (said("raised ZeroDivisionError", 10), said("raised ZeroDivisionError", 10), "still raises ZeroDivisionError"),
    ],
)
async def test_a_reproduction_that_does_not_hold_leaves_the_revert_unproven(
    base: SandboxResult, after: SandboxResult | None, detail: str
) -> None:
    scripts = {"base": base, **({"after": after} if after else {})}
    runner = ScriptedTestRunner(PASSED, reproduction=scripts)
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    outcome = await run(fixgen(reverter, runner), reproducible())
    assert isinstance(outcome, FixValidatedPayload) and outcome.proof == "unproven"
    assert detail in outcome.proof_detail and reverter.commits == [] and outcome.regression_test is None
    assert len(runner.scripts) == (2 if after else 1)  # not run after the revert when the base did not raise


async def test_a_method_frame_is_not_reproduced_and_says_why() -> None:
    frame = FrameVars(file="app/calc.py", function="Cart.total", vars={"self": "<Cart>"})
    runner = ScriptedTestRunner(PASSED)
    outcome = await run(fixgen(ScriptedReverter.reverting(SUSPECT.sha), runner), reproducible(reproduction=frame))
    assert isinstance(outcome, FixValidatedPayload) and outcome.proof == "unproven"
    assert "is not a top-level function" in outcome.proof_detail and runner.scripts == []

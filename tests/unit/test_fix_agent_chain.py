"""Fixgen's strategy chain on memory ports: a proved revert is the answer; otherwise the fix agent's patches, each
refused, failed or proved, every attempt recorded; the agent unavailable never raises (no dead letter).
The same on real git, the real sandbox and the real SDK: tests/integration/test_fix_agent.py."""

from __future__ import annotations

from schemas.events import FixFailedPayload, FixValidatedPayload
from services.fixgen.domain.patches import FileEdit, FixProposal, RegressionTest
from services.fixgen.domain.policy import PatchPolicy
from services.fixgen.memory import (
    RecordingBreakers,
    ScriptedFixAgent,
    ScriptedReverter,
    ScriptedTestRunner,
    report,
    sandbox_result,
)
from services.fixgen.modelpatch import ModelPatcher
from services.fixgen.ports import AgentUnavailable
from tests.support.fixgen import INCIDENT, PASSED, REPO, SUSPECT, diagnosis, fixgen, generate, run

D = diagnosis().model_copy(update={"exception_type": "ZeroDivisionError"})
NO_SUSPECT = diagnosis(suspect=None).model_copy(update={"exception_type": "ZeroDivisionError"})
TEST = RegressionTest(path="tests/test_total_empty.py", content="def test_total():\n    assert total([]) == 0\n")
FIX = FixProposal(
    summary="Do not divide the total by zero",
    edits=[FileEdit(path="app/calc.py", old="return sum(items) / 0", new="return sum(items)")],
    regression_test=TEST,
)
REPRODUCES = sandbox_result("pytest", exit_code=1, output="FAILED tests/test_total_empty.py::test_total - "
                            "ZeroDivisionError: division by zero\n")  # fmt: skip
ONE_PASSED = sandbox_result("pytest", output="1 passed in 0.01s\n")


def patcher(agent: ScriptedFixAgent, reverter: ScriptedReverter, **limits: object) -> ModelPatcher:
    return ModelPatcher(agent, reverter, PatchPolicy(**limits), max_attempts=2)  # type: ignore[arg-type]


def unproven_revert() -> tuple[ScriptedReverter, ScriptedTestRunner]:
    return ScriptedReverter.reverting(SUSPECT.sha), ScriptedTestRunner(PASSED)


async def test_without_a_model_the_chain_answers_what_revert_and_test_answers() -> None:
    alone = await run(fixgen(*unproven_revert()))
    chained = await generate(fixgen(*unproven_revert()))
    assert isinstance(chained, FixValidatedPayload) and isinstance(alone, FixValidatedPayload)
    assert chained.model_copy(update={"attempt_log": [], "reproduced": None, "reproduction_note": ""}) == alone
    [revert] = chained.attempt_log
    assert (revert.strategy, revert.outcome, revert.files) == ("revert-and-test", "unproven", ["app/calc.py"])
    assert chained.reproduced is None and "no reproduction attempted for the revert" in chained.reproduction_note


async def test_a_proved_revert_never_asks_the_model() -> None:
    reverter = ScriptedReverter.reverting(SUSPECT.sha)
    runner = ScriptedTestRunner(report("pytest", {"t::a": "passed"}), baseline=report("pytest", {"t::a": "failed"}))
    agent = ScriptedFixAgent([FIX])
    outcome = await generate(fixgen(reverter, runner, model=patcher(agent, reverter)), D)
    assert isinstance(outcome, FixValidatedPayload) and outcome.proof == "proved"
    assert outcome.strategy == "revert-and-test" and agent.requests == []


async def test_an_unproven_revert_goes_to_the_model_and_a_proved_patch_wins() -> None:
    reverter, runner = unproven_revert()
    runner.afters = [PASSED, REPRODUCES, ONE_PASSED, PASSED]  # revert's suite; regression at base, with fix; suite
    agent = ScriptedFixAgent([FIX])
    gen = fixgen(reverter, runner, model=patcher(agent, reverter))
    outcome = await gen.generate(D, REPO, INCIDENT, RecordingBreakers(), team="payments")
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert (outcome.strategy, outcome.proof, outcome.reproduced, outcome.attempts) == ("model-patch", "proved", True, 1)
    assert [(r.incident_id, r.team) for r in agent.requests] == [(str(INCIDENT), "payments")]  # the team's budget
    assert outcome.reproduction_note.startswith("reproduced: the regression test tests/test_total_empty.py fails")
    assert [(a.number, a.strategy, a.outcome) for a in outcome.attempt_log] == [
        (1, "revert-and-test", "unproven"), (2, "model-patch", "proved")
    ]  # fmt: skip
    assert outcome.regression_test == TEST.content and TEST.path in outcome.files_changed
    assert "app/calc.py" in outcome.files_changed and outcome.reverted is None
    # reproduce first: the regression test ran alone, before the fix was applied, then with it
    [worktree] = reverter.workspaces
    commands = [command for command, tree, _ in runner.runs if tree == worktree]
    assert commands == [f"python -m pytest -q -rfE --tb=short -- {TEST.path}"] * 2 + [REPO.test_command]
    assert reverter.leftover == []


async def test_the_model_unavailable_keeps_the_unproven_revert_and_records_why() -> None:
    reverter, runner = unproven_revert()
    agent = ScriptedFixAgent([AgentUnavailable("the model is unavailable: overloaded")])
    outcome = await generate(fixgen(reverter, runner, model=patcher(agent, reverter)), D)
    assert isinstance(outcome, FixValidatedPayload) and outcome.strategy == "revert-and-test"
    assert outcome.proof == "unproven"
    assert [(a.strategy, a.outcome) for a in outcome.attempt_log] == [
        ("revert-and-test", "unproven"), ("model-patch", "unavailable")
    ]  # fmt: skip
    assert "overloaded" in outcome.attempt_log[-1].reason and len(agent.requests) == 1  # no retry without a model


async def test_no_suspect_and_no_model_is_fix_failed_with_the_reason_never_an_exception() -> None:
    reverter, runner = ScriptedReverter([]), ScriptedTestRunner(PASSED)
    agent = ScriptedFixAgent([AgentUnavailable("over budget: budget_exceeded: incident budget")])
    outcome = await generate(fixgen(reverter, runner, model=patcher(agent, reverter)), NO_SUSPECT)
    assert isinstance(outcome, FixFailedPayload)
    assert "names no suspect commit" in outcome.reason and "the fix agent is unavailable: over budget" in outcome.reason
    assert [a.outcome for a in outcome.attempt_log] == ["failed", "unavailable"]
    assert any("unavailable" in line for line in outcome.tried)
    assert reverter.leftover == []


async def test_protected_paths_are_refused_before_anything_runs_and_each_attempt_says_why() -> None:
    reverter, runner = ScriptedReverter([]), ScriptedTestRunner(PASSED)
    migration = FixProposal(summary="Add a column", edits=[FileEdit(path="migrations/0002.sql", new="ALTER ...;\n")])
    agent = ScriptedFixAgent([migration, migration])
    gen = fixgen(reverter, runner, model=patcher(agent, reverter, protected_paths=("migrations/**",)))
    outcome = await generate(gen, NO_SUSPECT)
    assert isinstance(outcome, FixFailedPayload)
    refused = [a for a in outcome.attempt_log if a.strategy == "model-patch"]
    assert [a.outcome for a in refused] == ["refused", "refused"]
    assert all("protected paths (migrations/0002.sql)" in a.reason for a in refused)
    assert refused[0].files == ["migrations/0002.sql"] and refused[0].patch_summary == "Add a column"
    assert "no model patch held after 2 attempt(s)" in outcome.reason
    assert len(runner.runs) == 1 and reverter.applied == [] and reverter.written == []  # only the baseline ran
    assert "protected paths" in agent.requests[1].prompt  # the retry is told why


async def test_a_patch_that_does_not_apply_is_retried_with_gits_reason_and_the_second_holds() -> None:
    reverter, runner = ScriptedReverter([]), ScriptedTestRunner(PASSED)
    reverter.apply_errors = ["error: patch failed: app/calc.py:1\nerror: app/calc.py: patch does not apply"]
    runner.afters = [REPRODUCES, ONE_PASSED, PASSED]
    agent = ScriptedFixAgent([FIX, FIX])
    outcome = await generate(fixgen(reverter, runner, model=patcher(agent, reverter)), NO_SUSPECT)
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.attempts == 2 and outcome.proof == "proved"
    first = outcome.attempt_log[1]
    assert first.outcome == "failed" and "does not apply (git apply --check)" in first.reason
    assert "<previous_attempt" not in agent.requests[0].prompt
    assert "patch does not apply" in agent.requests[1].prompt
    assert [tree.name for tree in reverter.workspaces] == ["fix-agent-1", "fix-agent-2"]
    assert reverter.leftover == []


async def test_a_patch_without_a_regression_test_is_not_reproduced_null_and_the_note_says_why() -> None:
    """No test to run is `reproduced: null` (review: "model-written fix without a reproduction"), not `false`
    (which says a regression test was run and did not fail at the base)."""
    reverter, runner = ScriptedReverter([]), ScriptedTestRunner(PASSED)
    untested = FIX.model_copy(update={"regression_test": None, "no_reproduction_reason": "needs a live clock"})
    agent = ScriptedFixAgent([untested])
    outcome = await generate(fixgen(reverter, runner, model=patcher(agent, reverter)), NO_SUSPECT)
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert (outcome.reproduced, outcome.proof, outcome.regression_test) == (None, "unproven", None)
    assert outcome.reproduction_note == "NO REPRODUCTION: the fix agent wrote no regression test (needs a live clock)"
    assert outcome.proof_detail.startswith("UNPROVEN:") and "NO REPRODUCTION" in outcome.commit_message
    assert [command for command, _, _ in runner.runs] == [REPO.test_command] * 2  # the baseline, the suite: no test

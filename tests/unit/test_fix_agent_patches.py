"""The fix agent's answer as a patch, the policy limits, the reproduce-first verdicts and the retry prompt: pure
functions of services/fixgen/domain (no git, no sandbox, no model)."""

from __future__ import annotations

import pytest
from unidiff.patch import PatchSet

from pagerpatch.sandbox import TestResults
from schemas.events import DiagnosisReadyPayload, Evidence
from schemas.fixes import FixAttempt
from schemas.investigation import Claim, InvestigationReport
from services.fixgen.domain.patches import (
    BuiltPatch,
    FileEdit,
    FixProposal,
    PatchProblem,
    RegressionTest,
    apply_edits,
    build_patch,
    changed_paths,
    file_diff,
    normalise_diff,
    unsafe_path,
)
from services.fixgen.domain.policy import PatchPolicy, policy_refusal
from services.fixgen.domain.prompt import Feedback, fix_prompt, tail
from services.fixgen.domain.regression import (
    base_run_reproduces,
    failure_reasons,
    judge_patch,
    regression_command,
)
from services.fixgen.memory import report, sandbox_result
from services.fixgen.ports import TestReport

PRICING = (
    'COUPONS = {"SAVE10": 10}\n\n\ndef apply_coupon(total, code):\n    percent = COUPONS[code]\n    return total\n'
)
TEST = RegressionTest(path="tests/test_unknown_coupon.py", content="def test_x():\n    assert True\n")


def proposal(**fields: object) -> FixProposal:
    return FixProposal.model_validate({"summary": "Unknown coupons change nothing", **fields})


# ---------------------------------------------------------------- edits and diffs


def test_an_exact_edit_becomes_a_git_diff_that_unidiff_reads_and_the_test_is_kept_apart() -> None:
    edit = FileEdit(path="shop/pricing.py", old="COUPONS[code]", new="COUPONS.get(code, 0)")
    built = build_patch(proposal(edits=[edit], regression_test=TEST), {"shop/pricing.py": PRICING, TEST.path: None})
    assert isinstance(built, BuiltPatch)
    assert built.fix_diff.startswith("diff --git a/shop/pricing.py b/shop/pricing.py\n--- a/shop/pricing.py\n")
    assert "-    percent = COUPONS[code]\n+    percent = COUPONS.get(code, 0)\n" in built.fix_diff
    assert TEST.path not in built.fix_diff  # the regression test runs at the base first, without the fix
    assert "new file mode 100644\n--- /dev/null\n+++ b/tests/test_unknown_coupon.py" in built.test_diff
    assert built.files == ("shop/pricing.py", TEST.path)
    assert (built.added, built.removed) == (1 + 2, 1)
    assert len(PatchSet(built.fix_diff)) == 1


@pytest.mark.parametrize(
    ("old", "why"),
    [("COUPONS[nope]", "is not in shop/pricing.py"), ("return", "occurs 2 times in shop/pricing.py")],
)
def test_an_edit_whose_old_text_is_missing_or_ambiguous_is_a_mistake_to_correct(old: str, why: str) -> None:
    text = PRICING + "\n\ndef other():\n    return 1\n"
    built = build_patch(proposal(edits=[FileEdit(path="shop/pricing.py", old=old, new="x")]), {"shop/pricing.py": text})
    assert isinstance(built, PatchProblem) and not built.refused
    assert why in built.reason and "exactly once" in built.reason


def test_an_empty_old_creates_a_file_but_never_overwrites_one() -> None:
    assert apply_edits([FileEdit(path="new.py", new="x = 1\n")], {"new.py": None}) == {"new.py": "x = 1\n"}
    refused = apply_edits([FileEdit(path="a.py", new="x = 1\n")], {"a.py": "y = 2\n"})
    assert isinstance(refused, str) and "`old` must quote" in refused


def test_a_file_without_a_final_newline_gets_gits_marker() -> None:
    diff = file_diff("a.py", "x = 1", "x = 2")
    assert diff.endswith("-x = 1\n\\ No newline at end of file\n+x = 2\n\\ No newline at end of file\n")
    assert len(PatchSet(diff)) == 1


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.py", ".git/hooks/pre-commit", "a\\b.py"])
def test_paths_outside_the_repository_are_refused_not_corrected(path: str) -> None:
    assert unsafe_path(path) is not None
    built = build_patch(proposal(edits=[FileEdit(path=path, new="x")]), {})
    assert isinstance(built, PatchProblem) and built.refused


def test_a_unified_diff_without_prefixes_is_normalised_and_a_non_diff_is_refused_with_the_parse_error() -> None:
    raw = "--- shop/pricing.py\n+++ shop/pricing.py\n@@ -5,1 +5,1 @@\n-    percent = COUPONS[code]\n+    percent = 0\n"
    parsed = normalise_diff(raw)
    assert not isinstance(parsed, str)
    assert parsed[1].startswith("diff --git a/shop/pricing.py b/shop/pricing.py\n--- a/shop/pricing.py\n+++ b/")
    problem = build_patch(proposal(diff="this is not a diff"), {})
    assert isinstance(problem, PatchProblem) and "changes no file" in problem.reason
    escape = build_patch(proposal(diff=raw.replace("shop/pricing.py", "../x.py")), {})
    assert isinstance(escape, PatchProblem) and escape.refused


def test_what_is_committed_is_every_path_the_fix_and_its_test_change_and_nothing_else() -> None:
    rename = (
        "diff --git a/shop/old.py b/shop/new.py\nsimilarity index 90%\nrename from shop/old.py\nrename to shop/new.py\n"
        "--- a/shop/old.py\n+++ b/shop/new.py\n@@ -1,1 +1,1 @@\n-x = 1\n+x = 2\n"
        "diff --git a/shop/gone.py b/shop/gone.py\ndeleted file mode 100644\n--- a/shop/gone.py\n+++ /dev/null\n"
        "@@ -1,1 +0,0 @@\n-y = 1\n"
    )
    built = build_patch(proposal(diff=rename, regression_test=TEST), {TEST.path: None})
    assert isinstance(built, BuiltPatch), built
    assert changed_paths(built) == ["shop/old.py", "shop/new.py", "shop/gone.py", TEST.path]
    assert "diff --git a/shop/old.py b/shop/new.py\nrename from shop/old.py\nrename to shop/new.py\n" in built.fix_diff
    escape = build_patch(proposal(diff=rename.replace("a/shop/old.py", "a/../old.py")), {})
    assert isinstance(escape, PatchProblem) and escape.refused and "../old.py" in escape.reason


def test_a_fix_that_changes_nothing_or_edits_the_regression_test_is_sent_back() -> None:
    nothing = build_patch(proposal(regression_test=TEST), {TEST.path: None})
    assert isinstance(nothing, PatchProblem) and "changes nothing" in nothing.reason
    clash = build_patch(
        proposal(edits=[FileEdit(path=TEST.path, new="x = 1\n")], regression_test=TEST), {TEST.path: None}
    )
    assert isinstance(clash, PatchProblem) and "regression test's file" in clash.reason


# ---------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("files", "added", "expected"),
    [
        (["migrations/0002.sql"], 1, "protected paths (migrations/0002.sql)"),
        (["deploy/app.yaml"], 1, "protected paths"),
        (["a.py", "b.py", "c.py"], 3, "3 files, over policy.max_files (2)"),
        (["a.py"], 30, "30 lines (+30 -0), over policy.max_diff_lines (20)"),
        (["a.py", ".github/workflows/ci.yml"], 5, None),  # review's to gate, not fixgen's to refuse
    ],
)
def test_policy_limits_refuse_before_anything_runs(files: list[str], added: int, expected: str | None) -> None:
    policy = PatchPolicy(protected_paths=("migrations/**", "deploy/"), max_diff_lines=20, max_files=2)
    refusal = policy_refusal(files, added, 0, policy)
    assert refusal is None if expected is None else expected in (refusal or "")


def test_protected_globs_read_like_reviews() -> None:
    # One reading (pagerpatch.git.paths.is_protected, tested with review's risk rules): globs, folders, not siblings.
    policy = PatchPolicy(protected_paths=("*.sql", "deploy/"))
    assert "protected paths (db/schema.sql)" in (policy_refusal(["db/schema.sql"], 1, 0, policy) or "")
    assert "protected paths (deploy)" in (policy_refusal(["deploy"], 1, 0, policy) or "")
    assert policy_refusal(["src/deployer.py"], 1, 0, policy) is None


# ---------------------------------------------------------------- reproduce first


def run(output: str, *, exit_code: int = 1, outcomes: dict[str, str] | None = None) -> TestReport:
    tests = TestResults(outcomes) if outcomes is not None else None  # type: ignore[arg-type]
    return TestReport(sandbox_result("pytest", exit_code=exit_code, output=output), tests)


KEYERROR = "FAILED tests/test_unknown_coupon.py::test_x - KeyError: 'BOGUS'\n1 failed in 0.1s\n"


def test_the_regression_test_runs_alone_by_language() -> None:
    assert regression_command("tests/test_a b.py") == "python -m pytest -q -rfE --tb=short -- 'tests/test_a b.py'"
    assert regression_command("test/coupon.test.js") == "node --test test/coupon.test.js"
    assert regression_command("spec/coupon_spec.rb") is None


def test_failing_with_the_alerts_exception_or_an_assertion_is_a_reproduction() -> None:
    assert failure_reasons(KEYERROR) == ["KeyError: 'BOGUS'"]
    assert base_run_reproduces(run(KEYERROR), TEST.path, "KeyError").reproduced
    assert base_run_reproduces(run(KEYERROR), TEST.path, "builtins.KeyError").reproduced
    assertion = "FAILED tests/t.py::test_x - assert 95.0 == 100\n"
    found = base_run_reproduces(run(assertion), TEST.path, "KeyError")
    assert found.reproduced and "a failing assertion" in found.note
    # a long test id leaves no room for the message in the short summary: the `E` lines say it
    e_lines = "    def test_x():\n>       apply_coupon(1, 'X')\nE       KeyError: 'X'\n\nFAILED tests/t.py::test_x\n"
    assert failure_reasons(e_lines) == ["KeyError: 'X'"]
    assert base_run_reproduces(run(e_lines), TEST.path, "KeyError").reproduced


def test_a_test_passing_at_the_base_or_failing_another_way_is_not_a_reproduction() -> None:
    passing = base_run_reproduces(run("1 passed in 0.1s\n", exit_code=0), TEST.path, "KeyError")
    assert not passing.reproduced and passing.note.startswith("NOT A REPRODUCTION: the regression test")
    assert "already passes at the base commit" in passing.note
    other = "ERROR tests/t.py - ModuleNotFoundError: No module named 'shop.coupons'\n"
    wrong = base_run_reproduces(run(other), TEST.path, "KeyError")
    assert not wrong.reproduced and "ModuleNotFoundError" in wrong.note and "not KeyError" in wrong.note


def test_the_suite_with_the_fix_is_judged_against_the_baseline() -> None:
    base = report("pytest", {"t::a": "passed", "t::old": "failed", "t::flaky": "failed"})
    fixed = report("pytest", {"t::a": "passed", "t::old": "passed", "t::flaky": "failed"})
    assert judge_patch(base, fixed) == (None, ["t::old"])
    broken = report("pytest", {"t::a": "failed", "t::old": "failed", "t::flaky": "failed"})
    refusal, _ = judge_patch(base, broken)
    assert refusal is not None and "breaks tests that do not fail at the base commit" in refusal and "t::a" in refusal
    timeout = TestReport(sandbox_result("pytest", exit_code=None, timed_out=True))
    assert "time out" in (judge_patch(base, timeout)[0] or "")


# ---------------------------------------------------------------- what the agent is told

DIAGNOSIS = DiagnosisReadyPayload(
    repo="shop", base_commit="a" * 40, root_cause="KeyError for unknown coupons", confidence=0.7,
    evidence=[Evidence(file="shop/pricing.py", line=5, function="apply_coupon")], exception_type="KeyError",
    report=InvestigationReport(
        summary="unknown coupon codes crash checkout", root_cause="COUPONS[code] without a default",
        evidence=[Claim(file="shop/pricing.py", line=5, quote="percent = COUPONS[code]")], confidence=0.8,
        would_have_helped=["SECRET-HELPER-NOTE"],
    ),
)  # fmt: skip


def test_a_retry_gets_the_previous_attempt_and_its_output_cut_with_the_marker_never_older_history() -> None:
    first = FixAttempt(number=2, strategy="model-patch", outcome="failed", reason="the regression test still fails",
                       patch_summary="use get()", files=["shop/pricing.py"])  # fmt: skip
    output = "START-OF-OUTPUT " + "x" * 9000 + " TypeError: unsupported operand"
    prompt = fix_prompt(DIAGNOSIS, attempt=2, attempts=3, feedback=Feedback(first, output))
    assert '<previous_attempt number="2">' in prompt and "summary: use get()" in prompt
    assert "the regression test still fails" in prompt and "TypeError: unsupported operand" in prompt
    assert "[TRUNCATED: the first" in prompt and "START-OF-OUTPUT" not in prompt
    assert "Attempt 2 of 3." in prompt
    # the investigation's structured report, not its history or its own notes
    assert "COUPONS[code] without a default" in prompt
    assert "SECRET-HELPER-NOTE" not in prompt
    assert "<previous_attempt" not in fix_prompt(DIAGNOSIS, attempt=1, attempts=3)


def test_tail_keeps_short_output_whole() -> None:
    assert tail("short") == "short"
    cut = tail("a" * 10 + "b" * 5, 5)
    assert cut.endswith("bbbbb") and "the first 10 characters" in cut

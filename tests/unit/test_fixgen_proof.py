"""Fixgen's proof and its refusals, table-tested: the base run against the run with the revert, and which reverts
cannot be the fix (conflicts, no-ops, off the stack trace, tests only, comments/docstrings/formatting only)."""

from __future__ import annotations

import pytest

from pagerpatch.git.paths import is_test_path
from pagerpatch.git.workspace import RevertResult
from pagerpatch.sandbox import TestReport
from pagerpatch.sandbox.junit import TestOutcome
from schemas.events import DiagnosisReadyPayload, Evidence, SuspectCommit
from services.fixgen import domain
from services.fixgen.domain import ReproductionCheck, Verdict
from services.fixgen.memory import report, sandbox_result

SHA = "b" * 40
SHORT = SHA[:12]
CMD = "python -m pytest -q"
A, B, C = "tests/test_a.py::test_a", "tests/test_b.py::test_b", "tests/test_c.py::TestC::test_c"


def results(**outcomes: TestOutcome) -> TestReport:
    ids = {"a": A, "b": B, "c": C}
    return report(CMD, {ids[key]: outcome for key, outcome in outcomes.items()}, output="== summary ==\n")


def suite(passed: bool, *, timed_out: bool = False) -> TestReport:
    output = "3 passed in 0.1s\n" if passed else "1 failed, 2 passed in 0.1s\n"
    code = None if timed_out else 0 if passed else 1
    return TestReport(sandbox_result(CMD, exit_code=code, output=output, timed_out=timed_out))


REPRODUCED = ReproductionCheck(True, "reproduced: f() raises KeyError at the base commit and returns normally")
NOT_REPRODUCED = ReproductionCheck(False, "the alert carried no local variables")


@pytest.mark.parametrize(
    ("base", "after", "repro", "kind", "detail", "fixed", "new"),
    [
        # per-test results both ways
        (results(a="failed", b="passed"), results(a="passed", b="passed"), None, "proved",
         f"1 failing at the base commit pass with {SHORT} reverted: {A}", (A,), ()),
        (results(a="passed", b="passed"), results(a="passed", b="passed"), None, "unproven",
         f"UNPROVEN: the test suite passes at the base commit and with {SHORT} reverted", (), ()),
        (results(a="failed", b="passed"), results(a="failed", b="passed"), None, "unproven",
         f"(the baseline, ignored: 1 fail at the base too: {A})", (), ()),
        (results(a="failed", b="passed"), results(a="failed", b="failed"), None, "refused",
         f"reverting {SHORT} breaks tests that do not fail at the base commit: 1 failed: {B}", (), (B,)),
        # a test the revert brings back, failing
        (results(a="passed"), results(a="passed", c="failed"), None, "refused",
         f"breaks tests that do not fail at the base commit: 1 failed: {C}", (), (C,)),
        (results(a="failed", b="failed"), results(a="passed", b="failed"), None, "proved",
         f"pass with {SHORT} reverted: {A}", (A,), ()),
        (results(a="failed"), results(b="passed"), None, "unproven", "no test that fails at the base commit passes",
         (), ()),
        (results(a="passed"), results(a="passed"), REPRODUCED, "proved", REPRODUCED.detail, (), ()),
        (results(a="failed"), results(a="passed"), REPRODUCED, "proved", f"{A}; {REPRODUCED.detail}", (A,), ()),
        (results(a="passed"), results(a="passed"), NOT_REPRODUCED, "unproven",
         "; no reproduction: the alert carried no", (), ()),
        (results(a="passed"), results(a="failed"), REPRODUCED, "refused", "breaks tests", (), (A,)),
        # suite-level (no per-test results)
        (suite(False), suite(True), None, "proved", "the test suite fails at the base commit (1 failed, 2 passed in "
         "0.1s) and passes with", (), ()),
        (suite(True), suite(True), None, "unproven", "the test suite passes at the base commit and with", (), ()),
        (suite(True), suite(False), None, "refused", f"the tests fail with {SHORT} reverted: 1 failed", (), ()),
        (suite(False), suite(False), None, "refused", "they fail at the base commit too, and without per-test", (), ()),
        (suite(True, timed_out=True), suite(True), None, "unproven", "the tests time out at the base commit", (), ()),
        (suite(True), suite(True, timed_out=True), REPRODUCED, "refused", f"the tests time out with {SHORT} reverted",
         (), ()),
        (results(a="failed"), suite(True), None, "proved", "suite-level", (), ()),  # mixed: suite-level
    ],
)  # fmt: skip
def test_the_proof(
    base: TestReport,
    after: TestReport,
    repro: ReproductionCheck | None,
    kind: str,
    detail: str,
    fixed: tuple[str, ...],
    new: tuple[str, ...],
) -> None:
    verdict = domain.judge(SHA, base, after, repro)
    assert (verdict.kind, verdict.fixed_tests, verdict.new_failures) == (kind, fixed, new), verdict.detail
    assert detail in verdict.detail
    assert verdict.by_reproduction == (repro is REPRODUCED and kind == "proved")


def test_new_failures_name_the_first_three_and_count_the_rest() -> None:
    after = report(CMD, {f"tests/test_m.py::test_{i}": "failed" for i in range(32)})
    verdict = domain.judge(SHA, report(CMD, {}), after)
    assert verdict.kind == "refused"
    assert verdict.detail.endswith(
        "32 failed: tests/test_m.py::test_0, tests/test_m.py::test_1, tests/test_m.py::test_2 (and 29 more)"
    )


def test_removed_tests_come_from_the_results_else_from_the_diff() -> None:
    assert domain.removed_tests(results(a="passed", b="passed"), results(a="passed"), ["x::y"]) == [B]
    assert domain.removed_tests(suite(True), suite(True), ["tests/test_a.py::test_gone"]) == [
        "tests/test_a.py::test_gone"
    ]


def test_removed_test_defs_reads_test_functions_the_patch_takes_away() -> None:
    patch = """\
diff --git a/tests/test_a.py b/tests/test_a.py
--- a/tests/test_a.py
+++ b/tests/test_a.py
@@ -1,5 +1,3 @@
 def test_kept():
-    assert True
-def test_gone():
+    assert 1
-async def test_gone_too():
     pass
diff --git a/app/calc.py b/app/calc.py
--- a/app/calc.py
+++ b/app/calc.py
@@ -1,1 +0,0 @@
-def test_not_a_test_file(): pass
"""
    assert domain.removed_test_defs(patch) == ["tests/test_a.py::test_gone", "tests/test_a.py::test_gone_too"]


# ---------------------------------------------------------------- which reverts cannot be the fix


def diff(path: str, removed: list[str], added: list[str]) -> str:
    body = "".join(f"-{line}\n" for line in removed) + "".join(f"+{line}\n" for line in added)
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,{len(removed)} +1,{len(added)} @@\n{body}"


CODE = "def total(items):\n    return sum(items) / len(items)\n"
DOCSTRING = 'def total(items):\n    """Average."""\n    return sum(items) / len(items)\n'
REFORMATTED = "def total( items ):\n    # the mean\n    return (sum(items)\n            / len(items))\n"
CHANGED = "def total(items):\n    return sum(items)\n"


@pytest.mark.parametrize(
    ("before", "after", "equal"),
    [
        (CODE, DOCSTRING, True),
        (CODE, REFORMATTED, True),
        (CODE, CHANGED, False),
        ('"""Module."""\n', None, True),  # a file holding only a docstring, deleted
        (CODE, None, False),
        ("def f(:\n", "def f(:\n", False),  # unparsable: assume it matters
        ('class A:\n    """Doc."""\n', "class A:\n    pass\n", True),
    ],
)
def test_python_code_equal(before: str | None, after: str | None, equal: bool) -> None:
    assert domain.python_code_equal(before, after) is equal


TRACE = ["app/calc.py", "app/calc.js", "tests/test_calc.py"]


@pytest.mark.parametrize(
    ("patch", "sources", "reason"),
    [
        (diff("app/calc.py", ["x = 1"], ["x = 2"]), {"app/calc.py": ("x = 1\n", "x = 2\n")}, None),
        (diff("app/calc.py", ["x = 1"], ["x = 1  # one"]), {"app/calc.py": ("x = 1\n", "x = 1  # one\n")},
         "changes only comments, docstrings, blank lines or formatting (app/calc.py)"),
        (diff("app/other.py", ["x = 1"], ["x = 2"]), {}, "touches no file on the stack trace's path"),
        (diff("tests/test_calc.py", ["assert 1"], ["assert 2"]), {}, "changes only tests (tests/test_calc.py)"),
        (diff("app/calc.py", ["x = 1"], ["x = 1"]) + diff("tests/test_calc.py", ["a"], ["b"]),
         {"app/calc.py": ("x = 1\n", "x = 1\n")}, "formatting besides tests (app/calc.py)"),
        (diff("app/calc.js", ["// old note", "let x = 1;"], ["// new note", "let  x = 1;", ""]), {},
         "changes only comments"),
        (diff("app/calc.js", ["let x = 1;"], ["let x = 2;"]), {}, None),
        (diff("app/calc.py", ["a"], ["b"]) + diff("README.md", ["old"], ["new"]),
         {"app/calc.py": ('"""A."""\n', '"""B."""\n')}, "formatting (app/calc.py, README.md)"),
        ("", {}, "changes nothing at the base commit (an empty diff)"),
    ],
)  # fmt: skip
def test_change_refusal(patch: str, sources: dict[str, tuple[str, str]], reason: str | None) -> None:
    before = {path: text for path, (text, _) in sources.items()}
    after = {path: text for path, (_, text) in sources.items()}
    refusal = domain.change_refusal(SHA, patch, TRACE, before, after)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.startswith(f"reverting {SHORT} ") and reason in refusal


def test_without_stack_trace_files_the_trace_check_is_skipped() -> None:
    patch = diff("app/other.py", ["x = 1"], ["x = 2"])
    assert domain.change_refusal(SHA, patch, [], {"app/other.py": "x = 1\n"}, {"app/other.py": "x = 2\n"}) is None


def test_python_files_are_the_changed_python_files_outside_tests() -> None:
    patch = diff("app/a.py", ["1"], ["2"]) + diff("tests/test_a.py", ["1"], ["2"]) + diff("a.js", ["1"], ["2"])
    assert domain.python_files(patch) == ["app/a.py"]


@pytest.mark.parametrize(
    ("path", "is_test"),
    [("tests/test_a.py", True), ("pkg/tests/helpers.py", True), ("test_x.py", True), ("a/b_test.go", True),
     ("conftest.py", True), ("web/cart.spec.ts", True), ("app/calc.py", False), ("app/testing_utils.py", False)],
)  # fmt: skip
def test_fixgen_reads_test_files_as_diagnosis_does(path: str, is_test: bool) -> None:
    assert is_test_path(path) is is_test


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (RevertResult(ok=False, reverted=SHA, conflicted_files=("a.py",), error="conflicts in: a.py"),
         f"reverting {SHORT} does not apply cleanly: conflicts in: a.py"),
        (RevertResult(ok=False, reverted=SHA, error="git revert of bbbbbbb failed: nothing to commit, working tree "
                      "clean"), f"reverting {SHORT} changes nothing at the base commit (its change is already undone)"),
    ],
)  # fmt: skip
def test_revert_refusal(result: RevertResult, reason: str) -> None:
    assert domain.revert_refusal(SHA, result) == reason


def test_candidates_are_the_suspect_then_the_others_each_once() -> None:
    one, two = SuspectCommit(sha="1" * 40, subject="one"), SuspectCommit(sha="2" * 40, subject="two")
    d = DiagnosisReadyPayload(
        repo="r", base_commit="a" * 40, root_cause="x", suspect_commit=one, candidates=[two, one], confidence=0.5,
        evidence=[Evidence(file="a.py", line=1), Evidence(file="b.py", line=2), Evidence(file="a.py", line=3)],
    )  # fmt: skip
    assert domain.candidates_of(d) == [one, two] and domain.trace_files(d) == ["a.py", "b.py"]
    assert domain.candidates_of(d.model_copy(update={"suspect_commit": None, "candidates": []})) == []


def test_a_verdict_is_a_plain_value() -> None:
    assert Verdict("unproven", "x") == Verdict("unproven", "x")

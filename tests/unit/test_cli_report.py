"""What the CLI says without a database: `incidents show`'s account of the work (suspect, proof, tests, risk, what
was tried), `repos add`'s branch check and test baseline, and the at-once answer when no stack is running."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pagerpatch import cli
from pagerpatch.cli.baseline import Baseline, describe
from pagerpatch.cli.report import incident_report, patch_of, run_line
from pagerpatch.cli.repos import location_fields, missing_branch
from pagerpatch.sandbox import SandboxResult, TestReport, TestResults
from schemas.envelope import Event
from schemas.events import (
    ApprovalRequested,
    ApprovalRequestedPayload,
    DiagnosisReady,
    DiagnosisReadyPayload,
    Evidence,
    FixFailed,
    FixFailedPayload,
    FixValidated,
    FixValidatedPayload,
    RiskAssessment,
    RiskLevel,
    SuspectCommit,
    TestRun,
)

BASE = "a" * 40
SUSPECT = SuspectCommit(sha="b" * 40, subject="pricing: simplify coupon lookup")
LATER = SuspectCommit(sha="c" * 40, subject="pricing: coupons by code")
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
INCIDENT = uuid.UUID(int=7)
PATCH = "diff --git a/shop/pricing.py b/shop/pricing.py\n--- a/shop/pricing.py\n+++ b/shop/pricing.py\n"


def at(seconds: float) -> dict[str, Any]:
    return {"incident_id": INCIDENT, "occurred_at": T0 + timedelta(seconds=seconds)}


def diagnosis(**fields: Any) -> DiagnosisReadyPayload:
    values: dict[str, Any] = {
        "repo": "shop", "base_commit": BASE, "root_cause": "apply_coupon raises KeyError for an unknown code",
        "suspect_commit": SUSPECT, "confidence": 0.8, "strategy": "stacktrace-blame",
        "evidence": [Evidence(file="shop/pricing.py", line=42, function="apply_coupon", commit="b" * 40,
                              note="raise site")],
        "tried": ["d0d0d0d: only docstrings changed in the region"],
    }  # fmt: skip
    values.update(fields)
    return DiagnosisReadyPayload(**values)


def run(passed: bool, summary: str, failed: list[str] | None = None, exit_code: int | None = None) -> TestRun:
    code = exit_code if exit_code is not None else (0 if passed else 1)
    return TestRun(command="python -m pytest -q", passed=passed, exit_code=code, summary=summary, duration_s=2.5,
                   failed_tests=failed or [])  # fmt: skip


def validated(**fields: Any) -> FixValidatedPayload:
    values: dict[str, Any] = {
        "repo": "shop", "base_commit": BASE, "strategy": "revert", "patch": PATCH, "commit_message": "Revert",
        "files_changed": ["shop/pricing.py"], "lines_added": 3, "lines_removed": 1,
        "tests": run(True, "12 passed"), "attempts": 1, "diagnosis": diagnosis(), "proof": "proved",
        "proof_detail": "tests/test_pricing.py::test_unknown_coupon fails at the base and passes with the revert",
        "base_tests": run(False, "1 failed, 11 passed", ["tests/test_pricing.py::test_unknown_coupon"]),
        "fixed_tests": ["tests/test_pricing.py::test_unknown_coupon"], "reverted": SUSPECT,
    }  # fmt: skip
    values.update(fields)
    return FixValidatedPayload(**values)


def risk(level: RiskLevel, *reasons: str) -> ApprovalRequested:
    payload = ApprovalRequestedPayload(risk=RiskAssessment(level=level, score=4, reasons=list(reasons)), repo="shop",
                                       summary="revert", files_changed=["shop/pricing.py"])  # fmt: skip
    return ApprovalRequested.create(payload, source="review", **at(3))


def report(*events: Event[Any]) -> str:
    return "\n".join(incident_report(list(events)))


# ---------------------------------------------------------------- incidents show


def test_a_proved_fix_shows_suspect_root_cause_confidence_evidence_tried_proof_tests_and_risk() -> None:
    text = report(
        DiagnosisReady.create(diagnosis(), source="diagnosis", **at(1)),
        FixValidated.create(validated(), source="fixgen", **at(2)),
        risk(RiskLevel.LOW, "small revert"),
    )
    assert f"suspect: {'b' * 12} pricing: simplify coupon lookup" in text
    assert "root cause: apply_coupon raises KeyError for an unknown code" in text
    assert f"confidence: 0.80  strategy: stacktrace-blame  base: {'a' * 12}" in text
    assert f"  - shop/pricing.py:42 in apply_coupon (last changed by {'b' * 12}): raise site" in text
    assert "tried:\n  - d0d0d0d: only docstrings changed in the region" in text
    assert "proof: proved: tests/test_pricing.py::test_unknown_coupon fails at the base" in text
    assert "fix: revert, 1 file(s), +3 -1, 1 attempt(s)" in text
    assert ("tests at the base: failed (exit 1) in 2.5s (bubblewrap): 1 failed, 11 passed; failing: "
            "tests/test_pricing.py::test_unknown_coupon") in text  # fmt: skip
    assert "tests with the fix: passed in 2.5s (bubblewrap): 12 passed" in text
    assert "fixed tests (failing at the base, passing now): tests/test_pricing.py::test_unknown_coupon" in text
    assert "risk: LOW (score 4): small revert" in text
    assert "fix failed" not in text


def test_an_unproven_fix_says_so_and_names_the_commit_reverted_and_the_tests_it_removes() -> None:
    removed = [f"tests/test_coupons.py::test_{i}" for i in range(7)]
    fix = validated(proof="unproven", proof_detail="the tests pass with and without this change", reverted=LATER,
                    base_tests=run(True, "12 passed"), fixed_tests=[], removed_tests=removed)  # fmt: skip
    text = report(
        DiagnosisReady.create(diagnosis(candidates=[LATER]), source="diagnosis", **at(1)),
        FixValidated.create(fix, source="fixgen", **at(2)),
        risk(RiskLevel.MEDIUM, "unproven: the tests pass with and without this change"),
    )
    assert "proof: UNPROVEN: the tests pass with and without this change" in text
    assert f"reverted: {'c' * 12} pricing: coupons by code" in text
    assert "tests at the base: passed in 2.5s (bubblewrap): 12 passed" in text
    assert "fixed tests" not in text
    assert ("removed tests: this revert removes 7: tests/test_coupons.py::test_0, tests/test_coupons.py::test_1, "
            "tests/test_coupons.py::test_2, tests/test_coupons.py::test_3, tests/test_coupons.py::test_4 "
            "(and 2 more)") in text  # fmt: skip
    assert "risk: MEDIUM (score 4): unproven: the tests pass with and without this change" in text


def test_a_failed_fix_shows_the_reason_everything_tried_and_the_failing_tests() -> None:
    failed = FixFailedPayload(repo="shop", reason="reverting the candidates introduces new failures", attempts=2,
                              tests=run(False, "2 failed, 10 passed", ["tests/test_a.py::test_x"]),
                              tried=[f"{'b' * 7}: revert conflicts in shop/pricing.py"])  # fmt: skip
    text = report(
        DiagnosisReady.create(diagnosis(), source="diagnosis", **at(1)),
        FixFailed.create(failed, source="fixgen", **at(2)),
    )
    assert "tried:\n  - d0d0d0d: only docstrings changed in the region\n  - bbbbbbb: revert conflicts" in text
    assert "fix failed: reverting the candidates introduces new failures" in text
    assert "tests: failed (exit 1) in 2.5s (bubblewrap): 2 failed, 10 passed; failing: tests/test_a.py::test_x" in text
    assert "proof:" not in text and "risk:" not in text


def test_a_diagnosis_without_a_suspect_and_an_incident_without_work() -> None:
    assert "suspect: none" in report(DiagnosisReady.create(diagnosis(suspect_commit=None), source="d", **at(1)))
    assert incident_report([]) == []


def test_the_diff_is_the_validated_patch() -> None:
    assert patch_of([FixValidated.create(validated(), source="fixgen", **at(2))]) == PATCH
    assert patch_of([DiagnosisReady.create(diagnosis(), source="diagnosis", **at(1))]) is None


def test_a_timed_out_run() -> None:
    assert run_line(run(False, "").model_copy(update={"exit_code": None})).startswith("timed out in 2.5s")


# ---------------------------------------------------------------- repos add


def test_missing_branch_names_the_branches_there_are() -> None:
    assert missing_branch("main", ["main", "dev"], "/src/app") is None
    assert missing_branch("main", ["dev", "master"], "/src/app") == (
        "branch 'main' does not exist in /src/app; branches: dev, master"
    )
    many = [f"b{i:02}" for i in range(12)]
    shown = ", ".join(many[:10])
    assert (missing_branch("main", many, "/r") or "").endswith(f"branches: {shown}, ...")
    assert "it has no branches" in (missing_branch("main", [], "/r") or "")


def test_a_clone_url_given_as_path_is_stored_as_the_url() -> None:
    assert location_fields("/src/app") == {"path": "/src/app"}
    assert location_fields("../app") == {"path": "../app"}
    assert location_fields("https://github.com/org/app.git") == {"url": "https://github.com/org/app.git"}
    assert location_fields("file:///srv/git/app.git") == {"url": "file:///srv/git/app.git"}
    assert location_fields("git@github.com:org/app.git") == {"url": "git@github.com:org/app.git"}


def sandbox_result(exit_code: int | None, duration_s: float = 4.0, output: str = "") -> SandboxResult:
    return SandboxResult(command="python -m pytest -q", exit_code=exit_code, timed_out=exit_code is None,
                         duration_s=duration_s, output=output, backend="bubblewrap")  # fmt: skip


def baseline(report: TestReport, timeout_s: float = 300.0) -> Baseline:
    return describe(report, branch="main", sha="f" * 40, timeout_s=timeout_s)


def test_the_baseline_counts_passes_and_failures_and_names_the_failing_tests() -> None:
    tests = TestResults({"tests/test_a.py::test_ok": "passed", "tests/test_a.py::test_py311": "failed",
                         "tests/test_a.py::test_skip": "skipped"})  # fmt: skip
    result = baseline(TestReport(sandbox_result(1), tests))
    assert result.ran
    assert result.lines[0] == (
        f"baseline at main ({'f' * 12}) with `python -m pytest -q` in bubblewrap: 1 passed, 1 failed, 1 skipped "
        "in 4.0s (limit 300s)"
    )
    assert "only new failures count against a fix: 1 failed: tests/test_a.py::test_py311" in result.lines[1]


def test_a_baseline_without_per_test_results_goes_by_the_exit_code() -> None:
    assert "passed (exit 0; no per-test results)" in baseline(TestReport(sandbox_result(0))).lines[0]
    failing = baseline(TestReport(sandbox_result(1)))
    assert failing.ran and "failed (exit 1; no per-test results)" in failing.lines[0]
    assert "the suite fails at the base" in failing.lines[1]


def test_a_tight_margin_is_reported() -> None:
    tests = TestResults({"t::a": "passed"})
    lines = baseline(TestReport(sandbox_result(0, duration_s=181.0), tests), timeout_s=300.0).lines
    assert "warning: the run used 60% of its time limit" in lines[-1]
    assert not any("warning" in line for line in baseline(TestReport(sandbox_result(0, 94.0), tests)).lines)


@pytest.mark.parametrize(
    ("result", "says"),
    [
        (sandbox_result(None, duration_s=300.0), "the tests timed out at main"),
        (sandbox_result(127, output="sh: 1: tox: not found"), "exit 127, the command was not found"),
        (sandbox_result(4, output="ERROR: usage"), "exit 4, no test results"),
    ],
)  # fmt: skip
def test_a_test_command_that_does_not_run_is_no_baseline(result: SandboxResult, says: str) -> None:
    checked = baseline(TestReport(result))
    assert not checked.ran
    assert says in checked.lines[0]


# ---------------------------------------------------------------- no stack running: said at once


def test_incidents_show_without_a_stack_says_so_at_once(tmp_path: Path) -> None:
    env = {"PAGERPATCH_HOME": str(tmp_path), "DATABASE_URL": None, "PAGERPATCH_DATABASE_URL": None,
           "NATS_URL": None, "COLUMNS": "200"}  # fmt: skip
    for args in (["incidents", "show", "abc"], ["incidents", "list"], ["dlq", "list"]):
        started = time.monotonic()
        result = CliRunner().invoke(cli.app, args, env=env)
        assert result.exit_code == 1, result.output
        assert (f"no pagerpatch stack is running (no DATABASE_URL and no {tmp_path.resolve()}/runtime.json)"
                in result.output)  # fmt: skip
        assert time.monotonic() - started < 2.0


def test_a_database_that_does_not_answer_is_reported_within_the_connect_timeout(tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:  # listens but never answers: what a dead host behind a firewall looks like
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        port = silent.getsockname()[1]
        env = {"PAGERPATCH_HOME": str(tmp_path), "DATABASE_URL": f"postgresql://u:secret@127.0.0.1:{port}/pp"}
        started = time.monotonic()
        result = CliRunner().invoke(cli.app, ["incidents", "list"], env=env)
    assert result.exit_code == 1, result.output
    assert f"the pagerpatch database at 127.0.0.1:{port}/pp is not reachable (no answer within 3s)" in result.output
    assert "secret" not in result.output
    assert time.monotonic() - started < 6.0

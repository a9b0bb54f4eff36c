"""`pagerpatch eval fixes` end to end, on three quick scenarios and one embedded stack: a docstring-only follow-up
must not be blamed, a test already failing at HEAD must not hide the proof, and a revert nothing proves must wait
for a person. The figures are read from the `--json` document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SCENARIOS = ("docstring", "g", "uncovered")  # by name or by letter, as a person would type them
Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]  # the command as it ended, and its JSON report


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    home = tmp_path_factory.mktemp("eval-fixes-home")
    env = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "DATABASE_URL", "PAGERPATCH_CONFIG_FILE"}}
    env["PAGERPATCH_HOME"] = str(home)
    argv = [sys.executable, "-m", "pagerpatch.cli", "eval", "fixes", "--json", "--timeout", "150"]
    for name in SCENARIOS:
        argv += ["--scenario", name]
    done = subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True, timeout=300, check=False)
    try:
        document = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON report (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n"
                    f"{_stack_log(home)}")  # fmt: skip
    return done, document


def _stack_log(home: Path) -> str:
    log = home / "eval-fixes" / "stack.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no stack log)"


def _scenario(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in document["scenarios"] if s["name"] == name)


def test_the_run_passes_with_every_figure_as_expected(run: Run) -> None:
    done, document = run
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{json.dumps(document['failures'])}"
    assert "== building 3 scenario repositories" in done.stderr  # progress goes to stderr, the document to stdout
    totals = document["totals"]
    assert [s["name"] for s in document["scenarios"]] == ["docstring", "baseline", "uncovered"]
    assert totals["scenarios"] == 3
    assert totals["suspect_accuracy"] == 1.0
    assert (totals["proved"], totals["unproven"], totals["refused"], totals["no_outcome"]) == (2, 1, 0, 0)
    assert totals["low_risk_unproven_or_cosmetic_approvals"] == 0
    assert totals["auto_approved_unproven"] == 0
    assert totals["prs_opened"] >= 1
    assert totals["prs_fixing_the_bug"] == totals["prs_opened"]
    assert totals["expectations_met"] == 3, [s["misses"] for s in document["scenarios"]]
    assert document["passed"] is True and document["failures"] == []


def test_the_docstring_follow_up_is_set_aside_and_the_pr_fixes_the_bug(
    run: Run,
) -> None:
    docstring = _scenario(run[1], "docstring")
    assert docstring["suspect_ok"] and docstring["suspect"] == docstring["expected_suspect"]
    assert docstring["reverted"] == docstring["expected_suspect"]
    assert docstring["outcome"] == "proved" and docstring["mentions_ok"]
    assert docstring["state"] == "pr_opened" and docstring["pr_branch"]
    assert docstring["oracle"] == {"target": "pr", "fixes": True, "detail": "2 oracle test(s) pass", "valid": True}
    assert docstring["cosmetic"] is None


def test_a_failing_test_at_head_is_the_baseline_not_a_reason_to_refuse(
    run: Run,
) -> None:
    baseline = _scenario(run[1], "baseline")
    assert baseline["outcome"] == "proved"
    assert baseline["fixed_tests"] == ["tests/test_text.py::test_first_sentence_without_period_is_the_whole_text"]
    assert "tests/test_text.py::test_headline_keeps_apostrophes" not in baseline["fixed_tests"]  # fails both ways
    assert baseline["oracle"]["fixes"] is True


def test_an_unproven_revert_waits_for_a_person(run: Run) -> None:
    uncovered = _scenario(run[1], "uncovered")
    assert uncovered["outcome"] == "unproven"
    assert uncovered["state"] == "awaiting_approval"
    assert uncovered["approved_by"] is None and uncovered["pr_branch"] is None
    assert uncovered["risk"] in ("MEDIUM", "HIGH", "CRITICAL")
    assert uncovered["oracle"]["target"] == "pending"  # judged all the same: the waiting fix would fix the bug
    assert uncovered["oracle"]["fixes"] is True

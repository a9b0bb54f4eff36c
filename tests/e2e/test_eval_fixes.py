"""`pagerpatch eval fixes` end to end, on four quick scenarios run in-process (the default: the stages' own code
through the replay chain, no bus): a docstring-only follow-up must not be blamed, a test already failing at HEAD must
not hide the proof, a revert nothing proves must wait for a person, and a node repository's TypeError is blamed on
its commit and proved with `node --test`. The figures are read from the `--json` document. Then `--dataset`: a
malformed scenario file stops the command with exit 2 before anything runs, and a folder of one scenario whose
expectation the pipeline does not meet exits 1 below `--min`, printing per scenario whether the suspect was found,
the fix validated and the oracle passes on the PR branch. `--stack` still runs a scenario over an embedded stack
of its own (NATS, Postgres, every service) with the same figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SCENARIOS = ("docstring", "g", "uncovered", "j")  # by name or by letter, as a person would type them
SHIPPED = Path(__file__).parents[2] / "pagerpatch" / "ops" / "fixes_eval" / "scenarios"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]  # the command as it ended, and its JSON report


def _eval_fixes(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`pagerpatch eval fixes ARGS` as a person runs it, with its own state folder and no configured servers."""
    env = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "DATABASE_URL", "PAGERPATCH_CONFIG_FILE"}}
    env["PAGERPATCH_HOME"] = str(home)
    argv = [sys.executable, "-m", "pagerpatch.cli", "eval", "fixes", *args]
    return subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (scenario j is a node repository)")
    home = tmp_path_factory.mktemp("eval-fixes-home")
    done = _eval_fixes(home, "--json", "--timeout", "150", *(arg for name in SCENARIOS for arg in ("--scenario", name)))
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
    assert "== building 4 scenario repositories" in done.stderr  # progress goes to stderr, the document to stdout
    totals = document["totals"]
    assert [s["name"] for s in document["scenarios"]] == ["docstring", "baseline", "uncovered", "js-undefined"]
    assert totals["scenarios"] == 4
    assert totals["suspect_accuracy"] == 1.0 and totals["score"] == 1.0
    assert (totals["proved"], totals["unproven"], totals["refused"], totals["no_outcome"]) == (3, 1, 0, 0)
    assert totals["low_risk_unproven_or_cosmetic_approvals"] == 0
    assert totals["auto_approved_unproven"] == 0
    assert totals["prs_opened"] >= 1
    assert totals["prs_fixing_the_bug"] == totals["prs_opened"]
    assert totals["expectations_met"] == 4, [s["misses"] for s in document["scenarios"]]
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


def test_a_node_repository_s_bug_is_blamed_reverted_and_proved_by_its_own_node_test(run: Run) -> None:
    js = _scenario(run[1], "js-undefined")
    assert js["language"] == "javascript"
    assert (js["suspect_found"], js["fix_validated"], js["oracle_passes_on_pr"]) == (True, True, True)
    assert js["reverted"] == js["expected_suspect"]  # not the newer comment-only commit in the same function
    assert js["outcome"] == "proved" and js["state"] == "pr_opened"
    assert js["fixed_tests"] == ["test::a line without a discount pays the full price"]  # node's JUnit, per test
    assert js["oracle"]["detail"] == "2 oracle test(s) pass" and js["cosmetic"] is None


def _dataset_scenario() -> str:
    """Scenario k as someone's dataset file: no letter, another name, and an expectation the pipeline won't meet."""
    text = (SHIPPED / "k-js-range.toml").read_text()
    text = text.replace('name = "js-range"', 'name = "mislabelled"').replace('letter = "k"\n', "")
    return text.replace('expected = "proved"', 'expected = "refused"')


def test_a_malformed_scenario_file_in_the_dataset_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "mislabelled.toml").write_text(_dataset_scenario())
    (dataset / "typo.toml").write_text(_dataset_scenario().replace('expected = "refused"', 'expected = "fixed"'))
    done = _eval_fixes(tmp_path, "--dataset", str(dataset), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert f"{dataset / 'typo.toml'}: expected: expected one of proved, unproven, refused, not 'fixed'" in message
    assert "building" not in done.stdout + done.stderr  # nothing was built or started


@needs_node
def test_a_dataset_below_the_min_floor_exits_1_and_prints_each_scenario_s_three_facts(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "mislabelled.toml").write_text(_dataset_scenario())
    done = _eval_fixes(tmp_path, "--dataset", str(dataset), "--min", "1", "--timeout", "150")
    out = done.stdout
    assert done.returncode == 1, f"{out[-3000:]}\n{done.stderr[-3000:]}\n{_stack_log(tmp_path)}"
    assert "== building 1 scenario repositories" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("scenario "))
    header, row = lines[at].split(), lines[at + 1].split()
    assert header == ["scenario", "lang", "expected", "suspect-found", "fix-validated", "risk", "state", "pr",
                      "oracle-on-pr", "met"]  # fmt: skip
    assert row[:3] == ["mislabelled", "js", "refused"] and row[3] == "yes"  # suspect found
    assert row[4:7] == ["YES", "(PROVED),", "want"] and row[-2:] == ["passes", "NO"]  # validated; oracle passes on PR
    assert "suspect accuracy: 1.00 (1/1)" in out
    assert "FAILED: expectations met 0.00 (0/1) < 1.00 (--min)" in out  # the --min floor alone fails the run
    assert "suspect accuracy 1.00 <" not in out


def test_with_stack_a_scenario_runs_over_an_embedded_stack_with_the_same_figures(run: Run, tmp_path: Path) -> None:
    done = _eval_fixes(tmp_path, "--stack", "--json", "--timeout", "150", "--scenario", "docstring")
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{_stack_log(tmp_path)}"
    assert "== starting an embedded stack in" in done.stderr and "in this process" not in done.stderr
    assert (tmp_path / "eval-fixes" / "stack.log").exists()
    over_the_bus, in_process = _scenario(json.loads(done.stdout), "docstring"), _scenario(run[1], "docstring")
    same = ("suspect", "reverted", "outcome", "state", "risk", "approved_by", "fixed_tests", "oracle", "met")
    assert {k: over_the_bus[k] for k in same} == {k: in_process[k] for k in same}
    assert over_the_bus["pr_branch"] and over_the_bus["pr_branch"] != in_process["pr_branch"]  # one per incident

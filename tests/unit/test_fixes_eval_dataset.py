"""`pagerpatch eval fixes --dataset DIR` and `--min` without servers: reading a folder of scenario files (a malformed
one named by file and field), JavaScript scenarios' defaults, the run's scenarios with or without the shipped ones,
the `--min` floor, the per-scenario facts, the JavaScript cosmetic check, and the command's exit 2."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pagerpatch.cli import eval_fixes
from pagerpatch.ops.fixes_eval import catalog, spec
from pagerpatch.ops.fixes_eval.outcome import Observed, PipelineOutcome, cosmetic_reason
from pagerpatch.ops.fixes_eval.report import (
    EvalReport,
    OracleTarget,
    OracleVerdict,
    ScenarioResult,
    failures,
    table_lines,
    to_json,
)

BUG = "b" * 40
_JS = """
name = "js-tiny"
language = "javascript"
title = "a node scenario without a letter"
expected = "proved"
trigger = 'require("lib/half").half(null);'
oracle = 'require("node:test")("halves", () => {});'

[[steps]]
key = "bug"
message = "Initial import"
author = "alice"
date = "2024-01-01T00:00:00+00:00"

[steps.files]
"lib/half.js" = "exports.half = (n) => n.value / 2;\\n"
"""


def test_a_javascript_scenario_runs_node_s_own_test_runner_unless_it_says_otherwise() -> None:
    s = spec.parse_scenario(_JS, "js.toml")
    assert (s.language, s.test_command, s.letter, s.label, s.frame_vars) == (
        "javascript", "node --test", "", "js-tiny", False)  # fmt: skip
    npm = spec.parse_scenario(_JS.replace('language = "javascript"', 'language = "javascript"\ntest_command = "npm t"'))
    assert npm.test_command == "npm t"
    assert spec.parse_scenario(_JS.replace('language = "javascript"\n', "")).test_command == "python -m pytest -q"


def test_a_dataset_folder_loads_its_scenario_files_and_names_a_malformed_one_by_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(_JS)
    (tmp_path / "README.md").write_text("not a scenario")
    assert [s.name for s in spec.load_dataset(tmp_path)] == ["js-tiny"]
    (tmp_path / "bad.toml").write_text(_JS.replace('expected = "proved"', "expected = 3"))
    with pytest.raises(spec.ScenarioFileError) as caught:
        spec.load_dataset(tmp_path)
    assert str(caught.value) == f"{tmp_path / 'bad.toml'}: expected: expected one of proved, unproven, refused, not 3"


@pytest.mark.parametrize(("make", "says"), [(lambda p: p, "no scenario files"), (lambda p: p / "nope", "not a folder")])
def test_an_empty_or_missing_dataset_folder_is_an_error(
    tmp_path: Path, make: Callable[[Path], Path], says: str
) -> None:
    folder = make(tmp_path)
    with pytest.raises(spec.ScenarioFileError, match=f"{folder}: dataset: {says}"):
        spec.load_dataset(folder)


def test_a_dataset_runs_instead_of_the_shipped_scenarios_or_after_them(tmp_path: Path) -> None:
    (tmp_path / "js.toml").write_text(_JS)
    assert [s.name for s in catalog.datasets([tmp_path], shipped=False)] == ["js-tiny"]
    both = catalog.datasets([tmp_path], shipped=True)
    assert [s.name for s in both] == [*(s.name for s in catalog.SCENARIOS), "js-tiny"]
    assert [s.name for s in catalog.select(["js-tiny", "k"], both)] == ["js-range", "js-tiny"]
    (tmp_path / "js.toml").write_text(_JS.replace('name = "js-tiny"', 'name = "docstring"'))
    with pytest.raises(spec.ScenarioFileError, match="docstring: name: 'docstring' is used by another scenario"):
        catalog.datasets([tmp_path], shipped=True)


def _result(name: str, *, met: bool, outcome: Observed = "proved", target: OracleTarget = "pr") -> ScenarioResult:
    out = PipelineOutcome(uuid.uuid4(), "pr_opened" if target == "pr" else "failed", suspect=BUG, reverted=BUG,
                          outcome=outcome, pr_branch="pagerpatch/abcdef12" if target == "pr" else None)  # fmt: skip
    oracle = OracleVerdict(target, True if target == "pr" else None, "oracle said")
    return ScenarioResult(name, "", "proved" if met else "refused", BUG, out, oracle, True, None, None, 2.0,
                          "javascript")  # fmt: skip


def test_the_min_floor_is_the_share_of_scenarios_meeting_every_expectation() -> None:
    report = EvalReport("run", (_result("one", met=True), _result("two", met=False)), 5.0)
    assert report.totals.score == 0.5 and report.totals.suspect_accuracy == 1.0
    assert failures(report, 1.0, 0.75) == ["expectations met 0.50 (1/2) < 0.75 (--min)"]
    assert failures(report, 1.0, 0.5) == [] and failures(report, 1.0) == []  # no --min: no floor
    document = to_json(report, 1.0, 0.75)
    assert (document["min"], document["passed"], document["totals"]["score"]) == (0.75, False, 0.5)


def test_each_scenario_says_suspect_found_fix_validated_and_oracle_on_the_pr_branch() -> None:
    report = EvalReport("run", (_result("one", met=True), _result("two", met=False, outcome="refused", target="none")),
                        1.0)  # fmt: skip
    first, second = to_json(report, 0.0)["scenarios"]
    assert (first["suspect_found"], first["fix_validated"], first["oracle_passes_on_pr"]) == (True, True, True)
    assert (second["suspect_found"], second["fix_validated"], second["oracle_passes_on_pr"]) == (True, False, None)
    assert first["language"] == "javascript"
    lines = table_lines(report)
    assert lines[0].split()[:5] == ["scenario", "lang", "expected", "suspect-found", "fix-validated"]
    assert lines[1].split() == ["one", "js", "proved", "yes", "yes", "(proved)", "-", "pr_opened", "abcdef12", "passes",
                                "yes"]  # fmt: skip
    assert lines[2].split()[:5] == ["two", "js", "refused", "yes", "no"]


_CART = "function f(item) {\n  const d = item.discount || {};\n  return d.percent; // why\n}\n"


@pytest.mark.parametrize(
    ("after", "cosmetic"),
    [
        (_CART.replace("  return", "  // a new comment\n  return"), True),
        (_CART.replace("item.discount || {}", "item.discount  ||  {}").replace("// why", "/* why */"), True),
        (_CART.replace("item.discount || {}", "item.discount"), False),
        (_CART.replace("{}", '{ percent: "//" }'), False),  # "//" inside a string is not a comment
    ],
)
def test_a_javascript_change_of_comments_or_spacing_only_is_cosmetic(after: str, cosmetic: bool) -> None:
    assert (cosmetic_reason({"lib/cart.js": (_CART, after)}) is not None) is cosmetic
    assert cosmetic_reason({"test/cart.test.js": (_CART, after)}) is not None  # a test file is never behaviour


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("other")(lambda: None)  # two commands, so `eval` stays a group
    eval_fixes.register(app)
    return app


def test_the_command_exits_2_on_a_malformed_scenario_file_before_building_anything(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(_JS)
    (tmp_path / "bad.toml").write_text(_JS.replace("[[steps]]", "letter = 7\n[[steps]]", 1))
    done = CliRunner().invoke(_app(), ["eval", "fixes", "--dataset", str(tmp_path)])
    assert done.exit_code == 2, done.output
    assert f"{tmp_path / 'bad.toml'}: letter: expected a string, not 7" in done.output.replace("\n", "")

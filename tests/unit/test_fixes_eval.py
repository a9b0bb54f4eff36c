"""`pagerpatch eval fixes` without servers: reading the scenario files, choosing scenarios, reading outcomes from
events, the cosmetic check, and the report's figures and verdict."""

from __future__ import annotations

import fnmatch
import re
import tomllib
import uuid
from pathlib import Path
from typing import Any, Literal

import pytest
import typer

from pagerpatch.cli import eval_fixes
from pagerpatch.ops.demo_repo import ALICE
from pagerpatch.ops.fixes_eval import catalog, spec
from pagerpatch.ops.fixes_eval.history import BuildError, Edit, Expected
from pagerpatch.ops.fixes_eval.outcome import Observed, PipelineOutcome, cosmetic_reason, read_outcome
from pagerpatch.ops.fixes_eval.report import (
    TABLE_HEADER,
    EvalReport,
    OracleVerdict,
    ScenarioResult,
    failures,
    summary_lines,
    table_lines,
    to_json,
)
from schemas.envelope import Event
from schemas.events import (
    ApprovalRequested,
    ApprovalRequestedPayload,
    DiagnosisReady,
    DiagnosisReadyPayload,
    FixApproved,
    FixApprovedPayload,
    FixFailed,
    FixFailedPayload,
    FixValidated,
    FixValidatedPayload,
    PrOpened,
    PrOpenedPayload,
    RiskAssessment,
    RiskLevel,
    SuspectCommit,
    TestRun,
)

INCIDENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
BUG, OTHER, BASE = "b" * 40, "c" * 40, "a" * 40


# ---------------------------------------------------------------- catalog


def test_every_scenario_has_its_own_name_letter_and_a_bug_commit() -> None:
    names = [s.name for s in catalog.SCENARIOS]
    letters = [s.letter for s in catalog.SCENARIOS]
    assert letters == list("abcdefghijk")
    assert [s.name for s in catalog.SCENARIOS if s.language == "javascript"] == ["js-undefined", "js-range"]
    assert len(set(names)) == len(names)
    for s in catalog.SCENARIOS:
        keys = [step.key for step in s.steps]
        assert s.bug in keys and set(s.cosmetic) <= set(keys) and len(set(keys)) == len(keys)
        assert s.expected in ("proved", "unproven", "refused")
        assert ("def test_" if s.language == "python" else 'require("node:test")') in s.oracle
        assert s.test_command == ("node --test" if s.language == "javascript" else "python -m pytest -q")


def test_select_by_name_or_letter_keeps_catalog_order() -> None:
    assert [s.name for s in catalog.select(["i", "docstring", "A"])] == ["docstring", "uncovered"]
    assert catalog.select([]) == catalog.SCENARIOS


def test_select_names_the_known_scenarios_when_one_is_unknown() -> None:
    with pytest.raises(catalog.UnknownScenario, match=r"unknown scenario.*nope.*a=docstring"):
        catalog.select(["nope"])


def test_each_scenario_file_is_named_by_its_letter_and_name() -> None:
    folder = Path(spec.__file__).parent / spec.SCENARIO_FOLDER
    assert sorted(p.name for p in folder.glob("*.toml")) == [f"{s.letter}-{s.name}.toml" for s in catalog.SCENARIOS]


def test_the_scenario_files_ship_as_package_data() -> None:
    """Every scenario file matches a package-data glob, so an installed `pagerpatch eval fixes` has all of them."""
    package = Path(spec.__file__).parent
    globs = tomllib.loads((package.parents[2] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = [p.relative_to(package).as_posix() for p in (package / spec.SCENARIO_FOLDER).iterdir()]
    assert len(files) == len(catalog.SCENARIOS)
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, g) for g in globs["pagerpatch.ops.fixes_eval"])]
    assert missing == [], "add these to [tool.setuptools.package-data] in pyproject.toml"


# ---------------------------------------------------------------- scenario files

_SPEC = """
name = "tiny"
letter = "z"
title = "a tiny scenario"
expected = "unproven"
cosmetic = ["docs"]
trigger = "import tiny.core\\n"
oracle = "def test_x() -> None:\\n    pass\\n"

[[steps]]
key = "bug"
message = "Initial import of tiny"
author = "alice"
date = "2024-01-01T00:00:00+00:00"
package = "tiny"

[steps.files]
"tiny/core.py" = '''
raise ValueError("tiny")
'''

[[steps]]
key = "docs"
message = '''
docs: drop the notes

They were out of date.
'''
author = "dan"
date = "2024-01-02T00:00:00+00:00"
delete = ["NOTES.md"]

[[steps.edits]]
file = "tiny/core.py"
old = '"tiny"'
new = '"tiny!"'
"""


def test_a_scenario_file_reads_as_the_scenario_it_describes() -> None:
    s = spec.parse_scenario(_SPEC)
    assert (s.name, s.letter, s.expected, s.cosmetic, s.bug, s.frame_vars, s.mentions) == (
        "tiny", "z", "unproven", ("docs",), "bug", False, None)  # fmt: skip
    first, docs = s.steps
    package = {".gitignore": spec.GITIGNORE, "pyproject.toml": spec.pyproject("tiny"), "tiny/__init__.py": ""}
    assert first.files == {**package, "tiny/core.py": 'raise ValueError("tiny")\n'}
    assert (first.key, first.message, first.author, first.edits) == ("bug", "Initial import of tiny\n", ALICE, ())
    assert (docs.message, docs.author) == ("docs: drop the notes\n\nThey were out of date.\n", spec.DAN)
    assert docs.files == {"NOTES.md": None} and docs.edits == (Edit("tiny/core.py", '"tiny"', '"tiny!"'),)


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("title = ", "titel = ", "unknown key(s) titel"),
        ('expected = "unproven"', 'expected = "maybe"', "expected one of proved, unproven, refused, not 'maybe'"),
        (
            'author = "dan"',
            'author = "eve"',
            "steps: step 2: author: expected one of alice, bob, carol, dan, not 'eve'",
        ),
        ("old = ", "olde = ", "steps: step 2: edits: olde: unknown key(s) olde"),
        ('cosmetic = ["docs"]', 'cosmetic = "docs"', "cosmetic: expected an array"),
        ('cosmetic = ["docs"]', 'cosmetic = ["doc"]', "cosmetic: names no step: doc"),
        ('oracle = "', 'bug = "fix"\noracle = "', "bug: names no step (keys: bug, docs)"),
        ("oracle = ", "orakel = ", "orakel: unknown key(s) orakel"),
        ("oracle = ", "# oracle = ", "oracle: missing (required: name, title, steps, trigger, expected, oracle)"),
        ('name = "tiny"', 'name = "Tiny one"', "name: lowercase letters, digits and dashes"),
        ('letter = "z"', 'letter = "zz z"', "letter: one to three lowercase letters or digits"),
        ('letter = "z"', "letter = 3", "letter: expected a string, not 3"),
        ('letter = "z"', 'language = "ruby"', "language: expected one of python, javascript, not 'ruby'"),
        ('letter = "z"', 'language = "javascript"\nframe_vars = true', "frame_vars: Python scenarios only"),
        ('package = "tiny"', "package = 1", "steps: step 1: package: expected a string, not 1"),
        ("trigger = ", "trigger = = ", "toml: Invalid value"),  # TOML itself
    ],
)
def test_a_scenario_file_with_a_mistake_fails_loudly(old: str, new: str, says: str) -> None:
    assert old in _SPEC
    with pytest.raises(BuildError, match=re.escape("tiny.toml: ") + ".*" + re.escape(says)):
        spec.parse_scenario(_SPEC.replace(old, new, 1), "tiny.toml")


def test_a_scenario_without_steps_fails_loudly() -> None:
    fields = _SPEC[: _SPEC.index("[[steps]]")]
    with pytest.raises(BuildError, match=r"tiny.toml: steps: missing"):
        spec.parse_scenario(fields, "tiny.toml")
    with pytest.raises(BuildError, match=re.escape("tiny.toml: steps: a scenario needs at least one [[steps]]")):
        spec.parse_scenario(fields + "steps = []\n", "tiny.toml")


def test_a_folder_of_scenario_files_loads_in_letter_order(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text(_SPEC)
    (tmp_path / "a.toml").write_text(_SPEC.replace('letter = "z"', 'letter = "y"').replace('"tiny"', '"other"', 1))
    (tmp_path / "notes.md").write_text("not a scenario")
    assert [(s.letter, s.name) for s in spec.load_scenarios(tmp_path)] == [("y", "other"), ("z", "tiny")]


# ---------------------------------------------------------------- outcome


def _event(cls: type[Event[Any]], payload: Any, source: str = "test") -> Event[Any]:
    return cls.create(payload, source=source, incident_id=INCIDENT)


def _diagnosis() -> DiagnosisReadyPayload:
    return DiagnosisReadyPayload(repo="r", base_commit=BASE, root_cause="KeyError", confidence=0.8,
                                 suspect_commit=SuspectCommit(sha=BUG, subject="bug"))  # fmt: skip


def _validated(proof: Literal["proved", "unproven"] = "proved") -> FixValidatedPayload:
    run = TestRun(command="python -m pytest -q", passed=True, exit_code=0, duration_s=1.0)
    return FixValidatedPayload(
        repo="r", base_commit=BASE, strategy="revert-and-test", patch="diff --git a/x b/x\n", commit_message="Revert",
        tests=run, attempts=1, diagnosis=_diagnosis(), proof=proof, proof_detail=f"{proof}: because",
        fixed_tests=["tests/test_x.py::test_a"] if proof == "proved" else [],
        reverted=SuspectCommit(sha=BUG, subject="bug"),
    )  # fmt: skip


def _risk(level: RiskLevel) -> RiskAssessment:
    return RiskAssessment(level=level, score=0)


def test_a_proved_fix_approved_by_policy_with_its_pull_request() -> None:
    events = [
        _event(DiagnosisReady, _diagnosis()),
        _event(FixValidated, _validated()),
        _event(FixApproved, FixApprovedPayload(risk=_risk(RiskLevel.LOW), approved_by="policy", fix=_validated())),
        _event(PrOpened, PrOpenedPayload(repo="r", provider="local", branch="pagerpatch/x", head_commit=OTHER,
                                         title="fix", url="file:///remote.git?branch=pagerpatch/x")),
    ]  # fmt: skip
    out = read_outcome(events, "pr_opened", INCIDENT)
    assert (out.suspect, out.reverted, out.outcome, out.risk) == (BUG, BUG, "proved", "LOW")
    assert out.auto_approved and out.pr_branch == "pagerpatch/x" and out.fixed_tests == ("tests/test_x.py::test_a",)
    assert out.says("TEST_A") and not out.says("test_b")


def test_an_unproven_fix_waiting_for_approval() -> None:
    requested = ApprovalRequestedPayload(risk=_risk(RiskLevel.MEDIUM), repo="r", summary="s")
    events = [_event(DiagnosisReady, _diagnosis()), _event(FixValidated, _validated("unproven")),
              _event(ApprovalRequested, requested)]  # fmt: skip
    out = read_outcome(events, "awaiting_approval", INCIDENT)
    assert (out.outcome, out.risk, out.approved_by, out.pr_branch) == ("unproven", "MEDIUM", None, None)
    assert out.patch is not None


def test_a_refusal_carries_its_reason_and_what_was_tried() -> None:
    failed = FixFailedPayload(repo="r", reason="nothing fixes it", attempts=1, tried=["abc conflicts"])
    out = read_outcome([_event(DiagnosisReady, _diagnosis()), _event(FixFailed, failed)], "failed", INCIDENT)
    assert (out.outcome, out.detail, out.tried) == ("refused", "nothing fixes it", ("abc conflicts",))
    assert out.says("conflict")


def test_no_events_is_no_outcome() -> None:
    out = read_outcome([], "open", INCIDENT)
    assert out.outcome == "none" and out.suspect is None and "no diagnosis" in out.detail


# ---------------------------------------------------------------- cosmetic check

_CODE = 'def f(x):\n    """Doc."""\n    return x + 1\n'


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"pkg/m.py": (_CODE, _CODE.replace('"""Doc."""', '"""Longer doc.\n\n    More.\n    """'))}, "docstrings"),
        ({"pkg/m.py": (_CODE, _CODE.replace("x + 1", "(x\n        + 1)  # one"))}, "formatting"),
        ({"tests/test_m.py": ("a = 1\n", "a: int = 1\n"), "README.md": ("a", "b")}, "only tests or documentation"),
        ({"pkg/m.py": (_CODE, _CODE)}, "changes nothing"),
    ],
)
def test_changes_that_change_no_behaviour_are_cosmetic(changes: dict[str, Any], why: str) -> None:
    reason = cosmetic_reason(changes)
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "changes",
    [
        {"pkg/m.py": (_CODE, _CODE.replace("x + 1", "x + 2"))},
        {"pkg/m.py": (None, _CODE)},
        {"pkg/data.json": ("{}", '{"a": 1}')},
        {"pkg/m.py": (_CODE, "def f(:\n")},
    ],
)
def test_changes_of_code_are_not_cosmetic(changes: dict[str, Any]) -> None:
    assert cosmetic_reason(changes) is None


# ---------------------------------------------------------------- report


def _result(name: str = "a", *, outcome: Observed = "proved", expected: Expected = "proved", suspect: str = BUG,
            risk: str | None = "LOW", approved_by: str | None = "policy", fixes: bool | None = True,
            cosmetic: str | None = None) -> ScenarioResult:  # fmt: skip
    state, branch = ("pr_opened", "pagerpatch/1234567890") if approved_by else ("awaiting_approval", None)
    out = PipelineOutcome(INCIDENT, state, suspect=suspect, reverted=suspect, outcome=outcome, detail="why", risk=risk,
                          approved_by=approved_by, pr_branch=branch)  # fmt: skip
    oracle = OracleVerdict("pr" if approved_by else "pending", fixes, "oracle said")
    return ScenarioResult(name, name[0], expected, BUG, out, oracle, True, cosmetic, None, 1.0)


def test_all_expectations_met_pass_the_floor() -> None:
    report = EvalReport("run", (_result("a"), _result("b", outcome="unproven", expected="unproven", risk="MEDIUM",
                                                       approved_by=None)), 3.0)  # fmt: skip
    t = report.totals
    assert (t.suspect_accuracy, t.proved, t.unproven, t.prs_opened, t.prs_fixing_the_bug, t.expectations_met) == (
        1.0,
        1,
        1,
        1,
        1,
        2,
    )
    assert failures(report, 1.0) == []
    assert summary_lines(report, 1.0)[-1] == "passed"
    document = to_json(report, 1.0)
    assert document["passed"] and document["totals"]["suspect_accuracy"] == 1.0
    assert document["scenarios"][0]["oracle"] == {"target": "pr", "fixes": True, "detail": "oracle said", "valid": True}


def test_a_wrong_suspect_below_the_floor_fails_the_run() -> None:
    report = EvalReport("run", (_result("a"), _result("b", suspect=OTHER)), 3.0)
    assert report.totals.suspect_accuracy == 0.5
    assert failures(report, 0.75) == ["suspect accuracy 0.50 < 0.75"]
    assert failures(report, 0.5) == []
    assert not report.results[1].met and "suspect cccccccc, expected bbbbbbbb" in report.results[1].misses()


@pytest.mark.parametrize(
    "result",
    [
        _result("u", outcome="unproven", expected="unproven"),
        _result("c", cosmetic="only docstrings change"),
    ],
)
def test_an_unproven_or_cosmetic_change_approved_as_low_fails_the_run(result: ScenarioResult) -> None:
    report = EvalReport("run", (result,), 1.0)
    assert report.totals.low_risk_unproven_or_cosmetic_approvals == 1
    assert "approved as LOW risk" in failures(report, 0.0)[0]
    assert not result.met


def test_the_table_is_aligned_plain_text_with_misses_in_capitals() -> None:
    report = EvalReport("run", (_result("a"), _result("b", suspect=OTHER, fixes=False)), 1.0)
    lines = table_lines(report)
    assert lines[0].split() == list(TABLE_HEADER)
    assert lines[1].split() == ["a", "a", "py", "proved", "yes", "yes", "(proved)", "LOW", "auto", "pr_opened",
                                "12345678", "passes", "yes"]  # fmt: skip
    assert "NO cccccccc" in lines[2] and "FAILS" in lines[2] and lines[2].endswith("NO")
    assert len({line.index("expected") if "expected" in line else lines[0].index("expected") for line in lines}) == 1


# ---------------------------------------------------------------- the command


def test_fixes_joins_an_eval_group_a_plugin_added_or_makes_one() -> None:
    plugin = typer.Typer()
    with_plugin = typer.Typer()
    with_plugin.add_typer(plugin, name="eval")
    eval_fixes.register(with_plugin)
    assert [c.name for c in plugin.registered_commands] == ["fixes"]
    bare = typer.Typer()
    eval_fixes.register(bare)
    group = next(g.typer_instance for g in bare.registered_groups if g.name == "eval")
    assert group is not None and [c.name for c in group.registered_commands] == ["fixes"]

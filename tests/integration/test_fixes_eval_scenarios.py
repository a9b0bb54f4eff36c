"""The `eval fixes` scenarios are what they claim, on real git, the base interpreter and node: each bug raises a real
traceback at HEAD, its oracle fails there and passes at the bug's parent, the commits called cosmetic change no
behaviour (by the evaluation's own check), and the bug's revert applies -- except where it must conflict. The
JavaScript ones also run their own `node --test` in the real sandbox, with per-test results from node's JUnit report.
And the evaluation itself runs without the bus: the stages in this process, with no NATS or Postgres reachable.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pagerpatch.git.workspace import git
from pagerpatch.ops.demo_repo import DEPLOY_PREFIX
from pagerpatch.ops.fixes_eval import node
from pagerpatch.ops.fixes_eval.catalog import SCENARIOS
from pagerpatch.ops.fixes_eval.history import BuildError, BuiltScenario, Edit, Scenario, Step, build
from pagerpatch.ops.fixes_eval.oracle import check_fix, oracle_at
from pagerpatch.ops.fixes_eval.outcome import cosmetic_reason
from pagerpatch.ops.fixes_eval.runner import EVAL_DIR, run_fixes_eval
from pagerpatch.ops.fixes_eval.spec import parse_scenario
from pagerpatch.sandbox import BubblewrapSandbox, Environments, run_test_command
from pagerpatch.sandbox.environment import BaseInterpreter
from pagerpatch.settings import Settings
from pagerpatch.traces.stacktrace import map_frames_to_repo, parse_trace

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]
NO_NODE = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (the JavaScript scenarios)")


def _params(scenarios: list[Scenario] | tuple[Scenario, ...]) -> list[object]:
    """Each scenario as a test parameter named after it; a JavaScript one is skipped where node is missing."""
    return [pytest.param(s, id=s.name, marks=[NO_NODE] if s.language == "javascript" else []) for s in scenarios]


JS_SCENARIOS = [s for s in SCENARIOS if s.language == "javascript"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltScenario]:
    root = tmp_path_factory.mktemp("scenarios")
    usable = [s for s in SCENARIOS if s.language == "python" or shutil.which("node")]
    return {s.name: build(s, root / s.name) for s in usable}


@pytest.mark.parametrize("scenario", _params(SCENARIOS))
def test_the_bug_raises_a_real_trace_through_the_repository(
    scenario: Scenario, built: dict[str, BuiltScenario]
) -> None:
    b = built[scenario.name]
    trace = parse_trace(b.capture.traceback)
    assert trace is not None and trace.language == scenario.language
    assert trace.exception_type == b.capture.exception_type
    assert any(f.file and f.file.startswith(DEPLOY_PREFIX) for f in trace.frames)
    assert str(b.path) not in b.capture.traceback  # production paths, not the checkout's
    alert = b.alert("run1")
    assert alert["commit"] == b.head and alert["fingerprint"].endswith("run1")
    assert ("frame_vars" in alert) == scenario.frame_vars
    if scenario.frame_vars:
        innermost = alert["frame_vars"][-1]
        assert innermost["file"].startswith(DEPLOY_PREFIX) and innermost["vars"]


@pytest.mark.parametrize("scenario", _params(SCENARIOS))
def test_the_oracle_fails_at_head_and_passes_before_the_bug(
    scenario: Scenario, built: dict[str, BuiltScenario], tmp_path: Path
) -> None:
    b = built[scenario.name]
    parent = git(b.path, "rev-parse", f"{b.bug_sha}^").strip()
    at_head, before = oracle_at(b, b.head, tmp_path), oracle_at(b, parent, tmp_path)
    assert not at_head.passed, at_head.detail
    assert before.passed, before.detail


@pytest.mark.parametrize("scenario", _params(SCENARIOS))
def test_the_commits_called_cosmetic_change_no_behaviour(scenario: Scenario, built: dict[str, BuiltScenario]) -> None:
    b = built[scenario.name]
    for key in scenario.cosmetic:
        sha = b.shas[key]
        names = git(b.path, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha).split()
        changes = {n: (_show(b.path, f"{sha}^", n), _show(b.path, sha, n)) for n in names}
        assert cosmetic_reason(changes) is not None, f"{key} changes behaviour: {names}"
    bug = git(b.path, "diff-tree", "--no-commit-id", "--name-only", "-r", b.bug_sha).split()
    assert cosmetic_reason({n: (_show(b.path, f"{b.bug_sha}^", n), _show(b.path, b.bug_sha, n)) for n in bug}) is None


@pytest.mark.parametrize("scenario", _params(SCENARIOS))
def test_reverting_the_bug_applies_unless_the_scenario_is_a_conflict(
    scenario: Scenario, built: dict[str, BuiltScenario], tmp_path: Path
) -> None:
    b = built[scenario.name]
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(b.path), str(clone))
    ident = ["-c", "user.name=Eval", "-c", "user.email=eval@example.com"]
    done = subprocess.run(["git", *ident, "revert", "--no-edit", b.bug_sha], cwd=clone, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if scenario.name == "conflict":
        assert done.returncode != 0 and "conflict" in (done.stdout + done.stderr).lower()
        return
    assert done.returncode == 0, done.stderr
    check = check_fix(b, git(clone, "diff", "HEAD~1", "HEAD"), tmp_path / "scratch")
    assert check.applies and check.fixes and check.cosmetic is None, check


@pytest.mark.parametrize("scenario", _params([s for s in SCENARIOS if s.setup_command]))
def test_the_set_up_generates_what_the_scenario_says_in_a_fresh_environment(
    scenario: Scenario, built: dict[str, BuiltScenario], tmp_path: Path
) -> None:
    clone, venv = tmp_path / "clone", tmp_path / "venv"
    git(tmp_path, "clone", "--quiet", str(built[scenario.name].path), str(clone))
    subprocess.run([str(BaseInterpreter.current().executable), "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "VIRTUAL_ENV": str(venv), "HOME": str(tmp_path)}
    assert scenario.setup_command is not None
    done = subprocess.run(scenario.setup_command, shell=True, cwd=clone, env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for rel, content in scenario.generated.items():
        assert (clone / rel).read_text() == content
    # From outside the tree, the environment alone makes the package importable: the trigger reaches the bug.
    run = subprocess.run(["python", "-c", scenario.trigger], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.stderr.strip().splitlines()[-1].startswith(built[scenario.name].capture.exception_type), run.stderr


def test_an_edit_that_does_not_match_fails_the_build(tmp_path: Path) -> None:
    broken = Scenario(
        name="broken", letter="z", title="", expected="proved", oracle="", trigger="raise ValueError()\n",
        steps=(Step("bug", "x\n", SCENARIOS[0].steps[0].author, "2024-01-01T00:00:00+00:00", {"a.py": "x = 1\n"},
                    edits=(Edit("a.py", "y = 2", "y = 3"),)),),
    )  # fmt: skip
    with pytest.raises(BuildError, match="expected exactly one"):
        build(broken, tmp_path / "broken")


_TINY = """
name = "tiny"
letter = "z"
title = "a scenario file, built"
expected = "proved"
cosmetic = ["notes"]
trigger = "from tiny.core import half\\nhalf(None)\\n"
oracle = "def test_x() -> None:\\n    pass\\n"

[[steps]]
key = "import"
message = "Initial import of tiny"
author = "alice"
date = "2024-01-01T09:00:00+01:00"
package = "tiny"

[steps.files]
"NOTES.md" = "draft\\n"
"tiny/core.py" = '''
def half(n):
    return (n or 0) // 2
'''

[[steps]]
key = "bug"
message = "core: inputs are never empty"
author = "carol"
date = "2024-01-02T09:00:00+01:00"

[[steps.edits]]
file = "tiny/core.py"
old = "(n or 0)"
new = "n"

[[steps]]
key = "notes"
message = "docs: drop the draft notes"
author = "dan"
date = "2024-01-03T09:00:00+01:00"
delete = ["NOTES.md"]
"""


def test_a_scenario_file_builds_the_history_it_describes(tmp_path: Path) -> None:
    b = build(parse_scenario(_TINY, "tiny.toml"), tmp_path / "tiny")
    log = git(b.path, "log", "--reverse", "--format=%H|%an|%aI|%s").splitlines()
    assert [line.split("|")[1:] for line in log] == [
        ["Alice Moreau", "2024-01-01T09:00:00+01:00", "Initial import of tiny"],
        ["Carol Diaz", "2024-01-02T09:00:00+01:00", "core: inputs are never empty"],
        ["Dan Okafor", "2024-01-03T09:00:00+01:00", "docs: drop the draft notes"],
    ]
    assert [line.split("|")[0] for line in log] == [b.shas["import"], b.bug_sha, b.head]
    assert git(b.path, "ls-tree", "-r", "--name-only", "HEAD").split() == [
        ".gitignore", "pyproject.toml", "tiny/__init__.py", "tiny/core.py"]  # fmt: skip
    assert git(b.path, "show", "HEAD:tiny/core.py") == "def half(n):\n    return n // 2\n"
    assert b.capture.exception_type == "TypeError" and "/srv/app/tiny/core.py" in b.capture.traceback
    again = build(parse_scenario(_TINY, "tiny.toml"), tmp_path / "again")
    assert again.shas == b.shas  # fixed authors and dates: the same history everywhere


def _show(repo: Path, rev: str, name: str) -> str | None:
    done = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=repo, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


# ---------------------------------------------------------------- JavaScript (node) scenarios


@pytest.mark.parametrize("scenario", _params(JS_SCENARIOS))
def test_a_javascript_trace_names_the_bug_s_file_and_function_innermost(
    scenario: Scenario, built: dict[str, BuiltScenario]
) -> None:
    b = built[scenario.name]
    trace = parse_trace(b.capture.traceback)
    assert trace is not None and trace.exception_type in ("TypeError", "RangeError")
    mapped = map_frames_to_repo(trace.frames, git(b.path, "ls-files").split())
    bug_files = git(b.path, "diff-tree", "--no-commit-id", "--name-only", "-r", b.bug_sha).split()
    innermost, file = mapped[-1]
    assert file in bug_files and innermost.function in ("lineTotal", "pad")
    assert all(f.file.startswith(DEPLOY_PREFIX) for f, _ in mapped)
    assert "trigger.js" not in b.capture.traceback and "capture.js" not in b.capture.traceback  # the harness is cut


@NO_NODE
def test_a_javascript_oracle_reports_each_test_and_an_empty_one_says_so(tmp_path: Path) -> None:
    (tmp_path / "m.js").write_text("exports.half = (n) => n / 2;\n")
    oracle = (
        'const test = require("node:test"); const assert = require("node:assert/strict");\n'
        'const { half } = require("m");\n'
        'test("halves", () => assert.equal(half(4), 2));\n'
        'test("rounds down", () => assert.equal(half(5), 2));\n'
    )
    results, why = node.oracle_results(tmp_path, oracle, 60.0)
    assert results == {"halves": "passed", "rounds down": results["rounds down"]} and why == ""
    assert "2.5" in results["rounds down"]  # why it failed: node's assertion message
    empty, why = node.oracle_results(tmp_path, "// no tests yet\n", 60.0)
    assert empty == {} and why.startswith("the oracle has no test")
    broken, _ = node.oracle_results(tmp_path, 'require("no-such-module");\n', 60.0)
    assert list(broken.values()) != ["passed"] and "no-such-module" in next(iter(broken.values()))


@pytest.mark.skipif(not BubblewrapSandbox().available(), reason="bubblewrap cannot run here")
@pytest.mark.parametrize("scenario", _params(JS_SCENARIOS))
async def test_node_test_runs_in_the_sandbox_with_per_test_results_failing_at_head_and_not_after_the_revert(
    scenario: Scenario, built: dict[str, BuiltScenario], tmp_path: Path
) -> None:
    b = built[scenario.name]
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(b.path), str(clone))
    sandbox = BubblewrapSandbox(timeout_s=120)
    env = await Environments(tmp_path / "envs", sandbox).ensure(b.repo_config(), clone)
    at_head = await run_test_command(sandbox, env, scenario.test_command, clone, timeout_s=120)
    assert at_head.result.exit_code != 0 and at_head.tests is not None, at_head.result.output[-2000:]
    assert at_head.failed_tests == [f"test::{scenario.mentions}"]
    assert at_head.tests.passed  # the other tests ran and passed
    ident = ["-c", "user.name=Eval", "-c", "user.email=eval@example.com"]
    git(clone, *ident, "revert", "--no-edit", b.bug_sha)
    reverted = await run_test_command(sandbox, env, scenario.test_command, clone, timeout_s=120)
    assert reverted.result.passed and reverted.tests is not None and reverted.tests.failed == []
    assert set(reverted.tests.outcomes) == set(at_head.tests.outcomes)
    assert git(clone, "status", "--porcelain") == ""  # the JUnit report went outside the worktree


# ---------------------------------------------------------------- the evaluation without the bus


async def test_the_evaluation_runs_the_stages_in_process_with_no_bus_or_database_reachable(tmp_path: Path) -> None:
    """Nothing listens at the configured NATS and Postgres: the chain never needs them. A proved revert becomes a
    branch on the local-git remote the oracle judges; a conflicting revert is refused; the work folder is gone."""
    dead = "127.0.0.1:9"  # the discard port: nothing answers
    settings = Settings(home=tmp_path, nats_url=f"nats://{dead}", database_url=f"postgresql://u:p@{dead}/none")
    chosen = [s for s in SCENARIOS if s.name in ("docstring", "conflict")]
    said: list[str] = []
    report = await run_fixes_eval(settings, chosen, timeout_s=120, say=said.append)
    docstring, conflict = report.results
    assert [r.met for r in report.results] == [True, True], [r.misses() for r in report.results]
    assert docstring.outcome.state == "pr_opened" and docstring.outcome.suspect == docstring.expected_suspect
    assert docstring.oracle.target == "pr" and docstring.oracle.fixes is True
    home = tmp_path / EVAL_DIR
    remote = home / "scm" / "remotes" / "eval-fixes-docstring.git"
    assert docstring.outcome.pr_branch is not None and docstring.outcome.pr_url == (
        f"file://{remote}?branch={docstring.outcome.pr_branch}")  # fmt: skip
    assert git(remote, "rev-parse", f"refs/heads/{docstring.outcome.pr_branch}").strip()
    assert (conflict.outcome.outcome, conflict.outcome.state, conflict.oracle.target) == ("refused", "failed", "none")
    assert any("in this process" in line for line in said) and not any("stack" in line for line in said)
    assert not (home / "stack.log").exists() and not (home / "chains").exists()

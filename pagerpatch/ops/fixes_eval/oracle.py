"""Does a fix fix the bug? Apply its patch to a clean checkout of the scenario's HEAD and run the oracle test there.

The oracle is not in the repository, so it judges the fix independently of the repository's own suite. A Python
oracle runs with the base interpreter in isolated mode (no pagerpatch site-packages, no PYTHON* variables) and
without pytest: a small runner calls each `test_*` function, so the evaluation needs nothing the scenario does not
ship. A JavaScript oracle is a `node:test` file run with `node --test` (node.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pagerpatch.git.workspace import GitError, git
from pagerpatch.ops.fixes_eval import node
from pagerpatch.ops.fixes_eval.history import BuiltScenario, write_generated
from pagerpatch.ops.fixes_eval.outcome import cosmetic_reason
from pagerpatch.sandbox.environment import BaseInterpreter

__all__ = ["FixCheck", "OracleRun", "check_fix", "oracle_at", "pr_patch"]

ORACLE_TIMEOUT_S = 60.0
_ORACLE_FILE = "test_pagerpatch_oracle.py"
_RUNNER = r"""
import importlib.util, json, sys, traceback
code_root, oracle = sys.argv[1], sys.argv[2]
sys.path.insert(0, code_root)
sys.dont_write_bytecode = True
try:
    spec = importlib.util.spec_from_file_location("pagerpatch_oracle", oracle)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
except Exception as exc:
    print(json.dumps({"results": {"import": f"{type(exc).__name__}: {exc}"[:300]}}))
    sys.exit(0)
results = {}
for name, test in list(vars(module).items()):
    if name.startswith("test_") and callable(test):
        try:
            test()
            results[name] = "passed"
        except Exception as exc:
            results[name] = f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps({"results": results}))
"""


@dataclass(frozen=True, slots=True)
class OracleRun:
    """The oracle's verdict on one tree: whether every test passed, and what the first failure said."""

    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class FixCheck:
    """A fix judged on a clean checkout: does it apply, does the oracle pass, is its change only cosmetic."""

    applies: bool
    fixes: bool
    detail: str
    cosmetic: str | None  # why the patch changes no behaviour, or None


def oracle_at(built: BuiltScenario, rev: str, scratch: Path) -> OracleRun:
    """The oracle on the scenario's tree at `rev` (HEAD must fail it; the bug's parent must pass it)."""
    tree = _checkout(built, scratch, rev)
    try:
        return _run_oracle(built, tree)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def check_fix(built: BuiltScenario, patch: str, scratch: Path) -> FixCheck:
    """Apply `patch` (a diff against HEAD) to a clean checkout and run the oracle there."""
    tree = _checkout(built, scratch, built.head)
    try:
        done = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], cwd=tree, input=patch, text=True,
                              capture_output=True, timeout=ORACLE_TIMEOUT_S, check=False)  # fmt: skip
        if done.returncode != 0:
            return FixCheck(False, False, f"the patch does not apply to HEAD: {done.stderr.strip()[:300]}", None)
        cosmetic = cosmetic_reason(_changes(tree))
        run = _run_oracle(built, tree)
        return FixCheck(True, run.passed, run.detail, cosmetic)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def pr_patch(built: BuiltScenario, remote: str, branch: str, scratch: Path) -> str | None:
    """The pull request's change as a diff against HEAD (what merging it would bring); None when it cannot be read."""
    tree = _checkout(built, scratch, built.head)
    try:
        git(tree, "fetch", "--quiet", remote, branch)
        return git(tree, "diff", "--no-color", "--no-ext-diff", "--binary", "HEAD...FETCH_HEAD")
    except GitError:
        return None
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _checkout(built: BuiltScenario, scratch: Path, rev: str) -> Path:
    scratch.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix=f"{built.scenario.name}-", dir=scratch))
    git(scratch, "clone", "--quiet", "--no-checkout", str(built.path), str(tree))
    git(tree, "checkout", "--quiet", "--detach", rev)
    return tree


def _changes(tree: Path) -> dict[str, tuple[str | None, str | None]]:
    """Each file the applied patch touches: its text at HEAD and in the tree (None: absent)."""
    names = [n for n in git(tree, "diff", "--name-only", "-z", "HEAD").split("\0") if n]
    names += [n for n in git(tree, "ls-files", "--others", "--exclude-standard", "-z").split("\0") if n]
    out: dict[str, tuple[str | None, str | None]] = {}
    for name in names:
        try:
            before: str | None = git(tree, "show", f"HEAD:{name}")
        except GitError:
            before = None
        path = tree / name
        out[name] = (before, path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None)
    return out


def _run_oracle(built: BuiltScenario, tree: Path) -> OracleRun:
    scenario = built.scenario
    write_generated(tree, scenario)
    if scenario.language == "javascript":
        return _verdict(*_node_oracle(tree / scenario.code_root, scenario.oracle))
    with tempfile.TemporaryDirectory(prefix="pagerpatch-oracle-") as tmp:
        runner, oracle = Path(tmp) / "run_oracle.py", Path(tmp) / _ORACLE_FILE
        runner.write_text(_RUNNER)
        oracle.write_text(scenario.oracle)
        argv = [str(BaseInterpreter.current().executable), "-I", "-B", str(runner), str(tree / scenario.code_root),
                str(oracle)]  # fmt: skip
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp}
        try:
            done = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=ORACLE_TIMEOUT_S, env=env,
                                  check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            return OracleRun(False, f"the oracle timed out after {ORACLE_TIMEOUT_S:.0f}s")
    try:
        results: dict[str, str] = json.loads(done.stdout)["results"]
    except (ValueError, KeyError, TypeError):
        return OracleRun(False, f"the oracle did not run (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return _verdict(results, "")


def _node_oracle(code_root: Path, oracle: str) -> tuple[dict[str, str], str]:
    try:
        return node.oracle_results(code_root, oracle, ORACLE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {}, f"the oracle timed out after {ORACLE_TIMEOUT_S:.0f}s"
    except (node.NodeMissing, OSError) as exc:
        return {}, f"the oracle did not run: {exc}"


def _verdict(results: dict[str, str], why_none: str) -> OracleRun:
    """All passed, or the first failure; `why_none` says why there are no results when it is known."""
    failed = {name: why for name, why in results.items() if why != "passed"}
    if not results:
        return OracleRun(False, why_none or "the oracle has no test")
    if failed:
        name, why = next(iter(failed.items()))
        return OracleRun(False, f"{len(failed)} of {len(results)} oracle test(s) fail: {name}: {why}")
    return OracleRun(True, f"{len(results)} oracle test(s) pass")

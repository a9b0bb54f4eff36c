"""Building a scenario's repository: a real git history with fixed authors and dates, and the alert its bug raises.

A scenario is data (spec.py reads it from its file in scenarios/ or a dataset folder); `build` is the one builder
for all of them. Each commit writes whole files or makes exact text edits (each must match exactly once, so a
drifted scenario fails loudly) and is committed as demo_repo commits its own history. The alert's traceback is
real: a Python trigger runs at HEAD with the base interpreter (isolated: no pagerpatch site-packages),
`traceback.format_exc()`-style text and the repository frames' plain local variables are captured; a JavaScript
trigger runs with node (node.py) and its `err.stack` is captured. Then the checkout's paths are given the
production deploy prefix, as demo_repo does.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pagerpatch.git.workspace import git
from pagerpatch.ops.demo_repo import DEPLOY_PREFIX, Edit, Person, commit_files, hermetic_env, to_deploy_paths
from pagerpatch.ops.fixes_eval import node
from pagerpatch.sandbox.environment import BaseInterpreter
from pagerpatch.settings import RepoConfig
from pagerpatch.traces.stacktrace import parse_trace

__all__ = [
    "BuildError", "BuiltScenario", "Capture", "Edit", "Expected", "Language", "Scenario", "Step", "build", "capture",
    "write_generated",
]  # fmt: skip

Expected = Literal["proved", "unproven", "refused"]
Language = Literal["python", "javascript"]
CAPTURE_TIMEOUT_S = 60.0

# Runs the trigger with the code root first on sys.path and prints what production would have reported: the
# traceback without this script's own frame, and each repository frame's plain (JSON) local variables.
_CAPTURE_SCRIPT = r"""
import json, sys, traceback
repo, code_root, code = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, code_root)
sys.dont_write_bytecode = True


def plain(value):
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


try:
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
except Exception as exc:
    tb = exc.__traceback__.tb_next
    frames = []
    for frame, line in traceback.walk_tb(tb):
        file = frame.f_code.co_filename
        if file.startswith(repo + "/"):
            local = {k: v for k, v in frame.f_locals.items() if not k.startswith("__") and plain(v)}
            frames.append({"file": file, "function": frame.f_code.co_name, "line": line, "vars": local})
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    print(json.dumps({"traceback": text, "frames": frames}))
else:
    print(json.dumps({"traceback": None, "frames": []}))
"""


class BuildError(Exception):
    """A scenario could not be built as written (an edit that does not match, a bug that does not raise...)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One commit: whole files written (None deletes) and exact edits, by one author at one date."""

    key: str  # how the scenario names this commit ("bug", "docstring"...)
    message: str
    author: Person
    date: str
    files: Mapping[str, str | None] = field(default_factory=dict)
    edits: tuple[Edit, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A repository whose HEAD carries a bug from a known commit, the alert it raises, and what should happen."""

    name: str
    title: str  # what the scenario checks, in one line
    steps: tuple[Step, ...]
    trigger: str  # code in the scenario's language that raises the bug at HEAD (modules found from the code root)
    expected: Expected
    oracle: str  # a test file outside the repository: fails on the bug, passes once it is fixed
    letter: str = ""  # the shipped scenarios' short name (a..k); a dataset's may have none
    language: Language = "python"
    bug: str = "bug"  # the key of the commit that introduced the bug (the expected suspect)
    cosmetic: tuple[str, ...] = ()  # keys of commits that change no behaviour: never the fix
    code_root: str = ""  # where the package sits ("src" for a src layout)
    generated: Mapping[str, str] = field(default_factory=dict)  # files a build step makes (not in git)
    setup_command: str | None = None
    test_command: str = "python -m pytest -q"
    frame_vars: bool = False  # the alert carries the frames' local variables
    mentions: str | None = None  # text the verdict (reason, proof, tests) must name
    installed_copy: bool = False  # pagerpatch's environment also has the pre-bug package importable

    @property
    def service(self) -> str:
        return f"eval-{self.name}"

    @property
    def repo_name(self) -> str:
        return f"eval-fixes-{self.name}"

    @property
    def label(self) -> str:
        """How reports name it: letter and name, or the name alone."""
        return f"{self.letter} {self.name}".strip()


@dataclass(frozen=True, slots=True)
class Capture:
    """What the bug printed when triggered: the traceback (deploy paths) and the repository frames' variables."""

    traceback: str
    frames: tuple[dict[str, Any], ...]
    language: Language = "python"

    @property
    def exception_type(self) -> str:
        if self.language != "python":
            parsed = parse_trace(self.traceback)
            return parsed.exception_type if parsed else "Error"
        return self.traceback.strip().splitlines()[-1].partition(":")[0].strip()

    @property
    def message(self) -> str:
        if self.language != "python":
            parsed = parse_trace(self.traceback)
            return parsed.message if parsed else ""
        return self.traceback.strip().splitlines()[-1].partition(":")[2].strip()


@dataclass(frozen=True, slots=True)
class BuiltScenario:
    """A built scenario repository and the facts the evaluation needs about it."""

    scenario: Scenario
    path: Path
    shas: Mapping[str, str]  # step key -> commit sha
    head: str
    capture: Capture

    @property
    def bug_sha(self) -> str:
        return self.shas[self.scenario.bug]

    @property
    def cosmetic_shas(self) -> frozenset[str]:
        return frozenset(self.shas[key] for key in self.scenario.cosmetic)

    def repo_config(self) -> RepoConfig:
        s = self.scenario
        return RepoConfig(name=s.repo_name, path=str(self.path), services=[s.service], test_command=s.test_command,
                          setup_command=s.setup_command)  # fmt: skip

    def alert(self, run: str) -> dict[str, Any]:
        """The generic-webhook alert production would send, fingerprinted per run (never a repeat of an old one)."""
        s, c = self.scenario, self.capture
        alert: dict[str, Any] = {
            "title": f"{c.exception_type} in {s.service}",
            "service": s.service,
            "severity": "critical",
            "description": f"Unhandled {c.exception_type}: {c.message[:200]} (pagerpatch eval fixes, {s.name})",
            "stack_trace": c.traceback,
            "labels": {"env": "production", "eval": "fixes", "scenario": s.name, "run": run},
            "commit": self.head,
            "fingerprint": f"eval-fixes-{s.name}-{run}",
        }
        if s.frame_vars:
            alert["frame_vars"] = list(c.frames)
        return alert


def build(scenario: Scenario, dest: Path) -> BuiltScenario:
    """Create the scenario's repository at `dest` (absent or empty) and capture the alert its bug raises."""
    dest = dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        raise BuildError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    first = scenario.steps[0]
    git(dest, "init", "--quiet", "--initial-branch=main", env=hermetic_env(first.author, first.date))
    tree: dict[str, str] = {}
    shas: dict[str, str] = {}
    for step in scenario.steps:
        shas[step.key] = _commit(dest, tree, step)
    if scenario.bug not in shas or any(key not in shas for key in scenario.cosmetic):
        raise BuildError(f"{scenario.name}: the bug or a cosmetic commit names no step")
    head = git(dest, "rev-parse", "HEAD").strip()
    captured = capture(dest, scenario)
    if captured is None:
        raise BuildError(f"{scenario.name}: the trigger does not raise at HEAD")
    return BuiltScenario(scenario, dest, shas, head, captured)


def capture(repo: Path, scenario: Scenario) -> Capture | None:
    """Run the trigger at the checked-out commit and return what it raised (None: it did not raise)."""
    repo = repo.resolve()
    if scenario.language == "javascript":
        return _capture_node(repo, scenario)
    written = write_generated(repo, scenario)
    try:
        with tempfile.TemporaryDirectory(prefix="pagerpatch-eval-") as tmp:
            script = Path(tmp) / "capture.py"
            script.write_text(_CAPTURE_SCRIPT)
            argv = [str(BaseInterpreter.current().executable), "-I", "-B", str(script), str(repo),
                    str(repo / scenario.code_root), scenario.trigger]  # fmt: skip
            done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=CAPTURE_TIMEOUT_S,
                                  env=_plain_env(), check=False)  # fmt: skip
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    if done.returncode != 0:
        why = f"exit {done.returncode}: {done.stderr[-800:]}"
        raise BuildError(f"{scenario.name}: capturing the trigger failed ({why})")
    data = json.loads(done.stdout)
    if data["traceback"] is None:
        return None
    frames = tuple({**f, "file": _deployed(f["file"], repo)} for f in data["frames"])
    return Capture(to_deploy_paths(data["traceback"], repo), frames)


def _capture_node(repo: Path, scenario: Scenario) -> Capture | None:
    written = write_generated(repo, scenario)
    try:
        stack = node.capture_stack(repo, repo / scenario.code_root, scenario.trigger, CAPTURE_TIMEOUT_S)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{scenario.name}: capturing the trigger failed ({exc})") from exc
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    return None if stack is None else Capture(stack, (), "javascript")


def write_generated(tree: Path, scenario: Scenario) -> list[Path]:
    """Write the files the scenario's build step generates (a `_version.py`) into `tree`; the paths written."""
    written: list[Path] = []
    for rel, content in scenario.generated.items():
        target = tree / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            written.append(target)
    return written


def _commit(repo: Path, tree: dict[str, str], step: Step) -> str:
    """Apply `step` to `tree` (the repository's files as text) and commit what it touched."""
    for rel, content in step.files.items():
        if content is None:
            tree.pop(rel, None)
        else:
            tree[rel] = content
    for edit in step.edits:
        current = tree.get(edit.file, "")
        if current.count(edit.old) != 1:
            raise BuildError(f"step {step.key!r}: {edit.file}: expected exactly one {edit.old[:60]!r}")
        tree[edit.file] = current.replace(edit.old, edit.new)
    touched = {rel: tree.get(rel) for rel in sorted({*step.files, *(e.file for e in step.edits)})}
    return commit_files(repo, touched, step.message, step.author, step.date)


def _plain_env() -> dict[str, str]:
    """A minimal environment for the scenario's own code: no PYTHON* variables, no secrets of the caller."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tempfile.gettempdir()}


def _deployed(path: str, repo: Path) -> str:
    prefix = str(repo) + os.sep
    return DEPLOY_PREFIX + path[len(prefix) :] if path.startswith(prefix) else path

"""Fixgen on real git histories and the real bubblewrap sandbox: no false fixes.

Each scenario is a small repository built here with the shape of history seen on real projects (a later test of
the bug, a pre-existing failing test, a revert that breaks later code, a later change that makes a revert conflict,
a docstring-only follow-up, an alert carrying the failing frame's arguments). The use case runs on the git and
sandbox adapters: a revert is proved only by a check that fails at the base and passes after it.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pagerpatch.git import workspace
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.sandbox import BubblewrapSandbox, Environments, run_test_command
from pagerpatch.settings import RepoConfig
from schemas.events import (
    DiagnosisReadyPayload,
    Evidence,
    FixFailedPayload,
    FixValidatedPayload,
    FrameVars,
    SuspectCommit,
)
from services.fixgen.adapters import SandboxTestRunner, WorktreeReverter
from services.fixgen.memory import MemoryRepos, RecordingBreakers
from services.fixgen.usecase import FixGenerator, FixOutcome
from tests.support.git import git

_bwrap = BubblewrapSandbox()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
    pytest.mark.skipif(not _bwrap.available(), reason=_bwrap.unavailable_reason() or ""),
]

INCIDENT = uuid.UUID("0b7e2c1d-9f3a-4e6b-8c5d-2a1b3c4d5e6f")
OPS = "calc/ops.py"

OPS_GOOD = '''\
"""Arithmetic on lists of numbers."""

PRECISION = 2


def mean(values):
    """Average of the values."""
    if not values:
        return 0.0
    return sum(values) / len(values)


def total(values):
    """Sum of the values."""
    return sum(values)
'''
# The regression: the guard is gone and the division is an integer one.
OPS_BAD = OPS_GOOD.replace("    if not values:\n        return 0.0\n", "").replace(
    "sum(values) / len(values)", "sum(values) // len(values)"
)
TESTS = """\
from calc.ops import mean, total


def test_mean_of_two():
    assert mean([1, 3]) == 2


def test_total():
    assert total([1, 2]) == 3
"""
HALVES_TEST = """\
from calc.ops import mean


def test_mean_of_halves():
    assert mean([1, 2]) == 1.5
"""
LABEL_TEST = """\
from calc import ops


def test_label():
    assert ops.label([1]) == "1 in all"
"""
ALWAYS_FAILING = """\
import sys


def test_needs_a_future_python():
    assert sys.version_info >= (3, 99)
"""


@dataclass
class History:
    """A repository built commit by commit; `shas` maps each subject to its commit."""

    path: Path
    shas: dict[str, str] = field(default_factory=dict)

    def commit(self, subject: str, files: dict[str, str | None]) -> str:
        for name, text in files.items():
            target = self.path / name
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        day = len(self.shas) + 1
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", subject, date=f"2024-03-{day:02d}T12:00:00+01:00")
        self.shas[subject] = git(self.path, "rev-parse", "HEAD").strip()
        return self.shas[subject]

    def suspect(self, subject: str) -> SuspectCommit:
        return SuspectCommit(sha=self.shas[subject], subject=subject)

    @property
    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()


def history(tmp_path: Path, *extra_tests: tuple[str, str]) -> History:
    """The good code with its tests (and `extra_tests`), then the regression."""
    path = tmp_path / "calc"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = History(path)
    files: dict[str, str | None] = {"calc/__init__.py": "", OPS: OPS_GOOD, "tests/test_ops.py": TESTS}
    repo.commit("Add mean and total", {**files, **dict(extra_tests)})
    repo.commit("Speed up mean with integer division", {OPS: OPS_BAD})
    return repo


def diagnosis(repo: History, suspect: str, *candidates: str, **update: object) -> DiagnosisReadyPayload:
    return DiagnosisReadyPayload(
        repo="calc",
        base_commit=repo.head,
        root_cause="ZeroDivisionError raised in mean() at calc/ops.py:8",
        suspect_commit=repo.suspect(suspect),
        candidates=[repo.suspect(subject) for subject in candidates],
        evidence=[Evidence(file=OPS, line=8, function="mean")],
        confidence=0.8,
        **update,  # type: ignore[arg-type]
    )


async def fix(tmp_path: Path, repo: History, d: DiagnosisReadyPayload) -> FixOutcome:
    config = RepoConfig(name="calc", path=str(repo.path), test_command="python -m pytest -q")
    runner = SandboxTestRunner(_bwrap, Environments(tmp_path / "home" / "envs", _bwrap))
    generator = FixGenerator(
        repos=MemoryRepos.of(config),
        reverter=WorktreeReverter(Workspaces(tmp_path / "home" / "workspaces")),
        tests=runner,
        sandbox_problem=None,
        timeout_s=120.0,
    )
    return await generator.revert_and_test(d, config, INCIDENT, RecordingBreakers())


BAD = "Speed up mean with integer division"


async def test_the_suite_passing_both_ways_is_unproven_and_a_failing_test_at_the_base_is_ignored(
    tmp_path: Path,
) -> None:
    repo = history(tmp_path, ("tests/test_env.py", ALWAYS_FAILING))
    outcome = await fix(tmp_path, repo, diagnosis(repo, BAD))
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.proof == "unproven" and outcome.fixed_tests == []
    assert outcome.proof_detail.startswith("UNPROVEN: no test that fails at the base commit passes with")
    assert "tests/test_env.py::test_needs_a_future_python" in outcome.proof_detail
    assert outcome.base_tests is not None and outcome.base_tests.failed_tests == [
        "tests/test_env.py::test_needs_a_future_python"
    ]
    assert outcome.tests.failed_tests == ["tests/test_env.py::test_needs_a_future_python"]
    assert outcome.reverted == repo.suspect(BAD) and outcome.files_changed == [OPS]
    assert outcome.tests.sandbox == "bubblewrap"


async def test_a_test_failing_at_the_base_and_fixed_by_the_revert_proves_it_by_name(tmp_path: Path) -> None:
    repo = history(tmp_path, ("tests/test_env.py", ALWAYS_FAILING))
    repo.commit("Test the mean of halves", {"tests/test_halves.py": HALVES_TEST})
    outcome = await fix(tmp_path, repo, diagnosis(repo, BAD))
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.proof == "proved"
    assert outcome.fixed_tests == ["tests/test_halves.py::test_mean_of_halves"]  # not the pre-existing failure
    assert "pass with" in outcome.proof_detail and "tests/test_halves.py::test_mean_of_halves" in outcome.proof_detail
    assert outcome.removed_tests == [] and outcome.regression_test is None


async def test_a_revert_that_breaks_a_later_test_is_refused_by_name_and_the_next_candidate_is_tried(
    tmp_path: Path,
) -> None:
    repo = history(tmp_path)
    label = OPS_BAD + '\n\ndef label(values):\n    return f"{total(values)} in all"\n'
    repo.commit("Add label", {OPS: label})
    repo.commit("Test label", {"tests/test_label.py": LABEL_TEST})
    repo.commit("Test the mean of halves", {"tests/test_halves.py": HALVES_TEST})
    outcome = await fix(tmp_path, repo, diagnosis(repo, "Add label", BAD))
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.reverted == repo.suspect(BAD) and outcome.proof == "proved" and outcome.attempts == 2


async def test_every_candidate_refused_names_the_tests_each_one_breaks(tmp_path: Path) -> None:
    repo = history(tmp_path)
    label = OPS_BAD + '\n\ndef label(values):\n    return f"{total(values)} in all"\n'
    repo.commit("Add label", {OPS: label})
    repo.commit("Test label", {"tests/test_label.py": LABEL_TEST})
    outcome = await fix(tmp_path, repo, diagnosis(repo, "Add label"))
    assert isinstance(outcome, FixFailedPayload), outcome
    assert "breaks tests that do not fail at the base commit: 1 failed: tests/test_label.py::test_label" in (
        outcome.reason
    )
    assert outcome.tests is not None and outcome.tests.failed_tests == ["tests/test_label.py::test_label"]
    assert len(outcome.tried) == 1 and outcome.attempts == 1


async def test_a_revert_that_conflicts_falls_through_to_the_next_candidate(tmp_path: Path) -> None:
    repo = history(tmp_path)
    repo.commit("Round to three places", {OPS: OPS_BAD.replace("PRECISION = 2", "PRECISION = 3")})
    repo.commit("Round to four places", {OPS: OPS_BAD.replace("PRECISION = 2", "PRECISION = 4")})
    outcome = await fix(tmp_path, repo, diagnosis(repo, "Round to three places", BAD))
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.reverted == repo.suspect(BAD)
    assert outcome.diagnosis.suspect_commit == repo.suspect("Round to three places")


async def test_a_docstring_only_revert_is_refused(tmp_path: Path) -> None:
    repo = history(tmp_path)
    repo.commit("Polish the docstring", {OPS: OPS_BAD.replace("Average of the values.", "The arithmetic mean.")})
    alone = await fix(tmp_path, repo, diagnosis(repo, "Polish the docstring"))
    assert isinstance(alone, FixFailedPayload), alone
    assert alone.reason == (
        f"reverting {repo.shas['Polish the docstring'][:12]} changes only comments, docstrings, blank lines or "
        f"formatting ({OPS}): the program stays the same, so it cannot fix the failure"
    )
    assert alone.attempts == 0 and alone.tests is None


async def test_the_reproduction_proves_the_revert_and_its_regression_test_fails_at_the_base(tmp_path: Path) -> None:
    repo = history(tmp_path)
    frame = FrameVars(file="/srv/app/calc/ops.py", function="mean", line=8, vars={"values": []})
    d = diagnosis(repo, BAD, exception_type="ZeroDivisionError", reproduction=frame)
    outcome = await fix(tmp_path, repo, d)
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.proof == "proved" and outcome.fixed_tests == []  # the suite passes both ways
    assert outcome.proof_detail.startswith("reproduced: mean() with the captured arguments raises ZeroDivisionError")
    regression = f"tests/test_pagerpatch_regression_{str(INCIDENT)[:8]}.py"
    assert regression in outcome.files_changed and outcome.regression_test is not None

    # The fix as a pull request would apply it: its tests pass; the regression test alone fails at the base.
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(repo.path), str(check))
    (check / "fix.patch").write_text(outcome.patch)
    git(check, "apply", "fix.patch")
    (check / "fix.patch").unlink()
    config = RepoConfig(name="calc", path=str(repo.path))
    env = await Environments(tmp_path / "home" / "envs", _bwrap).ensure(config, check)
    fixed = await run_test_command(_bwrap, env, "python -m pytest -q", check, timeout_s=120)
    assert fixed.result.passed and fixed.tests is not None
    assert f"{regression}::test_mean_does_not_raise_zerodivisionerror_again" in fixed.tests.passed
    git(check, "checkout", "-q", "--", OPS)
    before = await run_test_command(_bwrap, env, "python -m pytest -q", check, timeout_s=120)
    assert before.failed_tests == [f"{regression}::test_mean_does_not_raise_zerodivisionerror_again"]
    assert "raised ZeroDivisionError again" in before.result.output
    assert workspace.resolve(repo.path, "HEAD") == d.base_commit  # the repository itself is untouched

"""The demo scenario end to end on real git: history, the real regression, blame-based diagnosis, revert."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pagerpatch.ops
from pagerpatch.git import workspace
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.ops.demo_repo import (
    DEPLOY_PREFIX,
    DemoBuildError,
    DemoRepo,
    build_demo_repo,
    demo_alert,
    demo_source,
)
from pagerpatch.settings import RepoConfig
from pagerpatch.traces import symbols
from pagerpatch.traces.stacktrace import parse_trace
from schemas.events import AlertReceivedPayload, Severity
from services.diagnosis.adapters import GitHistory
from services.diagnosis.usecase import find_suspect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

BAD_SUBJECT = "pricing: simplify coupon lookup"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRepo:
    return build_demo_repo(tmp_path_factory.mktemp("demo") / "shop cart")


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> Workspaces:
    return Workspaces(tmp_path_factory.mktemp("home") / "work spaces")


@pytest.fixture(scope="module")
def repo_cfg(demo: DemoRepo) -> RepoConfig:
    return RepoConfig(name="shopcart", path=str(demo.path), services=["checkout"])


def run_tests(path: Path) -> subprocess.CompletedProcess[str]:
    """The demo repository's own test command, as the sandbox would run it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q"],
        cwd=path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_history_is_deterministic_and_shaped_like_a_real_one(demo: DemoRepo, tmp_path: Path) -> None:
    again = build_demo_repo(tmp_path / "again")
    assert [c.sha for c in again.commits] == [c.sha for c in demo.commits]
    assert (again.bad_commit, again.head) == (demo.bad_commit, demo.head)

    subjects = [c.subject for c in demo.commits]
    assert len(subjects) == 5 and subjects[3] == BAD_SUBJECT
    assert demo.head == demo.commits[-1].sha != demo.bad_commit
    assert workspace.commit_info(demo.path, demo.bad_commit).parents == (demo.good_commit,)
    assert workspace.resolve(demo.path, "main") == demo.head
    bad_files = workspace.diff_stats(demo.path, demo.good_commit, demo.bad_commit).files
    later_files = workspace.diff_stats(demo.path, demo.bad_commit, demo.head).files
    assert bad_files == ("shopcart/pricing.py",)
    assert set(later_files).isdisjoint(bad_files)


def test_build_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    with pytest.raises(DemoBuildError):
        build_demo_repo(tmp_path)


def test_the_traceback_is_real_and_parses(demo: DemoRepo) -> None:
    trigger = demo.trigger()
    assert (trigger.exception_type, trigger.message) == ("KeyError", "'SUMMER24'")
    assert f'File "{DEPLOY_PREFIX}shopcart/pricing.py"' in trigger.traceback
    assert str(demo.path) in trigger.raw_traceback and str(demo.path) not in trigger.traceback
    parsed = parse_trace(trigger.traceback)
    assert parsed is not None
    assert (parsed.language, parsed.exception_type, parsed.message) == ("python", "KeyError", "'SUMMER24'")
    assert [f.function for f in parsed.frames] == ["<module>", "checkout", "quote", "price_cart", "find_coupon"]
    assert parsed.frames[-1].context == "coupon = COUPONS[normalize_code(code)]"


@pytest.mark.parametrize("index", [0, 1, 2], ids=["initial-import", "shipping", "readme"])
def test_every_commit_before_the_regression_passes_its_tests(
    demo: DemoRepo, workspaces: Workspaces, repo_cfg: RepoConfig, index: int
) -> None:
    path = workspaces.worktree(repo_cfg, f"good-{index}", demo.commits[index].sha, "tests")
    result = run_tests(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_head_fails_and_only_reverting_the_bad_commit_fixes_it(
    demo: DemoRepo, workspaces: Workspaces, repo_cfg: RepoConfig
) -> None:
    head = workspaces.worktree(repo_cfg, "inc-demo", demo.head, "broken")
    broken = run_tests(head)
    assert broken.returncode == 1
    assert "KeyError: 'SUMMER24'" in broken.stdout
    assert "test_unknown_coupon_is_rejected" in broken.stdout

    # A naive "revert HEAD" undoes the unrelated inventory change and leaves checkout broken.
    naive = workspaces.worktree(repo_cfg, "inc-demo", demo.head, "naive")
    assert workspace.revert(naive, demo.head).ok
    assert run_tests(naive).returncode == 1

    fix = workspaces.worktree(repo_cfg, "inc-demo", demo.head, "fix")
    result = workspace.revert(fix, demo.bad_commit)
    assert result.ok and result.commit is not None
    fixed = run_tests(fix)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    stats = workspace.diff_stats(fix, demo.head, result.commit)
    assert stats == workspace.DiffStats(files=("shopcart/pricing.py",), added=2, removed=2)
    assert "COUPONS.get(normalize_code(code))" in workspace.diff(fix, demo.head, result.commit)


@pytest.mark.parametrize("which", ["production", "raw"])
def test_find_suspect_names_exactly_the_bad_commit(
    demo: DemoRepo, workspaces: Workspaces, repo_cfg: RepoConfig, which: str
) -> None:
    trigger = demo.trigger()
    parsed = parse_trace(trigger.traceback if which == "production" else trigger.raw_traceback)
    assert parsed is not None
    path = workspaces.worktree(repo_cfg, "inc-demo", demo.head, f"diagnosis-{which}")
    report = find_suspect(GitHistory(path), parsed, "HEAD")

    assert report.base_commit == demo.head
    assert report.suspect is not None and report.suspect.sha == demo.bad_commit
    assert report.suspect.subject == BAD_SUBJECT
    assert report.confidence >= 0.8

    first = report.evidence[0]
    assert (first.file, first.line, first.function, first.commit) == (
        "shopcart/pricing.py",
        parsed.frames[-1].line,
        "find_coupon",
        demo.bad_commit,
    )
    files = workspace.list_files(path)
    for item in report.evidence:  # everything named was verified against the repository
        assert item.file in files
        assert item.commit is not None and workspace.commit_exists(path, item.commit)
        if item.function:
            assert symbols.defines(workspace.read_file(path, item.file), item.file, item.function)
    assert [e.function for e in report.evidence] == ["find_coupon", "price_cart", "quote", "checkout"]

    for needle in ("KeyError", "'SUMMER24'", "find_coupon()", f"shopcart/pricing.py:{first.line}"):
        assert needle in report.root_cause
    assert demo.bad_commit[:7] in report.root_cause and BAD_SUBJECT in report.root_cause

    payload = report.to_diagnosis("shopcart", title="KeyError in checkout", severity=Severity.P1)
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == demo.bad_commit
    assert payload.base_commit == demo.head and payload.strategy == "stacktrace-blame"
    assert payload.evidence[0].commit == demo.bad_commit


def test_find_suspect_without_repository_frames_blames_nobody(demo: DemoRepo) -> None:
    parsed = parse_trace(
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/json/decoder.py", line 355, in raw_decode\n'
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n"
    )
    assert parsed is not None
    report = find_suspect(GitHistory(demo.path), parsed)
    assert report.suspect is None and report.evidence == () and report.confidence == 0.1
    assert "JSONDecodeError" in report.root_cause


def test_demo_alert_is_the_generic_webhook_shape(demo: DemoRepo) -> None:
    alert = demo_alert(demo)
    assert set(alert) == {"title", "service", "severity", "description", "stack_trace", "labels", "commit"}
    assert (alert["service"], alert["severity"], alert["commit"]) == ("checkout", "critical", demo.head)
    assert alert["stack_trace"] == demo.trigger().traceback
    AlertReceivedPayload(
        source="generic",
        service=alert["service"],
        title=alert["title"],
        description=alert["description"],
        stack_trace=alert["stack_trace"],
        labels=alert["labels"],
        commit=alert["commit"],
        severity_hint=alert["severity"],
    )


def test_each_demo_run_alert_is_a_problem_of_its_own(demo: DemoRepo) -> None:
    """`pagerpatch demo` run again must not land on the earlier run's incident (still open, its PR waiting)."""
    first, second = demo_alert(demo, run="run-1"), demo_alert(demo, run="run-2")
    assert first["fingerprint"] != second["fingerprint"]
    assert (first["labels"]["demo_run"], second["labels"]["demo_run"]) == ("run-1", "run-2")
    plain = demo_alert(demo)
    assert "fingerprint" not in plain and "demo_run" not in plain["labels"]  # grouped by its trace, as before
    for alert in (first, second):
        rest = {k: v for k, v in alert.items() if k not in {"fingerprint", "labels"}}
        assert rest == {k: v for k, v in plain.items() if k != "labels"}
        payload = AlertReceivedPayload(source="generic", service=alert["service"], title=alert["title"],
                                       stack_trace=alert["stack_trace"], fingerprint=alert["fingerprint"])  # fmt: skip
        assert payload.fingerprint == alert["fingerprint"]


def test_the_scenario_ships_as_package_data() -> None:
    """Every scenario file matches a package-data glob, so an installed `pagerpatch demo` builds the same history."""
    source = demo_source()
    package = Path(pagerpatch.ops.__file__).parent
    assert source == package / "demo_scenario" and (source / "shopcart" / "pricing.py").is_file()
    globs = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = [p.relative_to(package).as_posix() for p in source.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]  # fmt: skip
    assert len(files) >= 10
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, g) for g in globs["pagerpatch.ops"])]
    assert missing == [], "add these to [tool.setuptools.package-data] in pyproject.toml"


def test_repeated_frames_are_blamed_once(demo: DemoRepo) -> None:
    frame = '  File "/srv/app/shopcart/pricing.py", line 84, in price_cart\n'
    parsed = parse_trace(
        "Traceback (most recent call last):\n"
        + frame * 3
        + '  File "/srv/app/shopcart/pricing.py", line 64, in find_coupon\n'
        + "KeyError: 'SUMMER24'\n"
    )
    assert parsed is not None
    report = find_suspect(GitHistory(demo.path), parsed)
    assert [(e.file, e.line) for e in report.evidence] == [("shopcart/pricing.py", 64), ("shopcart/pricing.py", 84)]
    assert report.suspect is not None and report.suspect.sha == demo.bad_commit

"""The CLI on a real Postgres: `incidents show` tells the work done on an incident (suspect, proof, tests, risk,
`--diff`), `incidents list` keeps whole ids on an 80-column terminal, and `repos add` refuses a default branch
that does not exist, stores the set-up keys, and reports the test baseline with `--check-tests`."""

from __future__ import annotations

import subprocess
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import Result

from pagerpatch.git import repos
from pagerpatch.incidents import record
from pagerpatch.kernel import store
from pagerpatch.kernel.checkpoints import Checkpoints
from pagerpatch.sandbox import BubblewrapSandbox
from pagerpatch.settings import RepoConfig
from schemas.envelope import Event
from schemas.events import (
    ApprovalRequested,
    ApprovalRequestedPayload,
    DiagnosisReady,
    DiagnosisReadyPayload,
    FixValidated,
    FixValidatedPayload,
    IncidentOpened,
    IncidentOpenedPayload,
    RiskAssessment,
    RiskLevel,
    Severity,
    SuspectCommit,
    TestRun,
)
from tests.support.cli import run_cli

pytestmark = pytest.mark.integration

_bwrap = BubblewrapSandbox()
needs_bwrap = pytest.mark.skipif(not _bwrap.available(), reason=_bwrap.unavailable_reason() or "")

TITLE = "checkout 500: KeyError 'SPRING' in apply_coupon"
PATCH = "diff --git a/shop/pricing.py b/shop/pricing.py\n-    return COUPONS[code]\n+    return COUPONS.get(code)\n"


@pytest.fixture
async def db(fresh_db: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    await store.migrate(fresh_db)
    pool = await store.create_pool(fresh_db, max_size=2)
    try:
        yield fresh_db, pool
    finally:
        await pool.close()


async def invoke(url: str, home: Path, *args: str, columns: int = 200) -> Result:
    return await run_cli(*args, home=home, database_url=url, env={"COLUMNS": str(columns)})


# ---------------------------------------------------------------- incidents show / list


async def open_incident(pool: asyncpg.Pool, incident_id: uuid.UUID) -> IncidentOpened:
    opened = IncidentOpened.create(
        IncidentOpenedPayload(fingerprint="fp", title=TITLE, service="checkout", severity=Severity.P2, repo="shop"),
        source="triage",
        incident_id=incident_id,
    )
    await pool.execute(
        """INSERT INTO incidents (id, fingerprint, state, title, service, severity, repo)
           VALUES ($1, 'fp', 'open', $2, 'checkout', 'P2', 'shop')""",
        incident_id,
        TITLE,
    )
    return opened


async def stage_did(pool: asyncpg.Pool, stage: str, given: Event[Any], *outputs: Event[Any]) -> None:
    """What a stage leaves behind: its checkpoint with its outputs, and the incident's timeline."""
    checkpoints = Checkpoints(pool, stage)
    await checkpoints.begin(given)
    async with pool.acquire() as conn, conn.transaction():
        await checkpoints.finish(given, outputs, conn)
        await record(conn, [given, *outputs])


def run_of(passed: bool, summary: str, failed: list[str]) -> TestRun:
    return TestRun(command="python -m pytest -q", passed=passed, exit_code=0 if passed else 1, summary=summary,
                   duration_s=1.5, failed_tests=failed)  # fmt: skip


async def test_incidents_show_tells_the_work_done_and_prints_the_diff(
    db: tuple[str, asyncpg.Pool], tmp_path: Path
) -> None:
    url, pool = db
    incident_id = uuid.uuid4()
    opened = await open_incident(pool, incident_id)
    suspect = SuspectCommit(sha="b" * 40, subject="pricing: simplify coupon lookup [fast path]")
    diagnosis = DiagnosisReadyPayload(repo="shop", base_commit="a" * 40, root_cause="unknown coupon codes raise",
                                      suspect_commit=suspect, confidence=0.75,
                                      tried=["ccccccc: only formatting changed in the region"])  # fmt: skip
    ready = opened.derive(DiagnosisReady, diagnosis, stage="diagnosis")
    fix = FixValidatedPayload(
        repo="shop", base_commit="a" * 40, strategy="revert", patch=PATCH, commit_message="Revert", attempts=1,
        files_changed=["shop/pricing.py"], lines_added=1, lines_removed=1, diagnosis=diagnosis,
        tests=run_of(True, "3 passed", []), base_tests=run_of(True, "3 passed", []), proof="unproven",
        proof_detail="the tests pass with and without this change", reverted=suspect,
        removed_tests=["tests/test_pricing.py::test_fast_path[SPRING]"],
    )  # fmt: skip
    validated = ready.derive(FixValidated, fix, stage="fixgen")
    risk = RiskAssessment(level=RiskLevel.MEDIUM, score=3, reasons=["unproven: the tests pass with and without"])
    asked = validated.derive(ApprovalRequested, ApprovalRequestedPayload(risk=risk, repo="shop", summary="revert"),
                             stage="review")  # fmt: skip
    await stage_did(pool, "diagnosis", opened, ready)
    await stage_did(pool, "fixgen", ready, validated)
    await stage_did(pool, "review", validated, asked)

    shown = await invoke(url, tmp_path, "incidents", "show", str(incident_id)[:8], columns=80)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert f"suspect: {'b' * 12} pricing: simplify coupon lookup [fast path]" in out  # markup-like text kept
    assert "root cause: unknown coupon codes raise" in out
    assert "confidence: 0.75  strategy: stacktrace-blame" in out
    assert "tried:\n  - ccccccc: only formatting changed in the region" in out
    assert "proof: UNPROVEN: the tests pass with and without this change" in out
    assert "tests at the base: passed in 1.5s (bubblewrap): 3 passed" in out
    assert "tests with the fix: passed in 1.5s (bubblewrap): 3 passed" in out
    assert "removed tests: this revert removes 1: tests/test_pricing.py::test_fast_path[SPRING]" in out
    assert "risk: MEDIUM (score 3): unproven: the tests pass with and without" in out
    assert "fix.validated" in out  # the timeline is still there
    assert "COUPONS.get(code)" not in out

    with_diff = await invoke(url, tmp_path, "incidents", "show", str(incident_id), "--diff")
    assert with_diff.exit_code == 0, with_diff.output
    assert with_diff.output.rstrip().endswith(PATCH.rstrip())

    narrow = await invoke(url, tmp_path, "incidents", "list", columns=80)
    assert narrow.exit_code == 0, narrow.output
    first, second = narrow.output.splitlines()[:2]  # two lines an incident: the id whole, the title below
    assert first.startswith(f"{incident_id}  P2  awaiting_approval  checkout  seen 1x  opened ")
    assert second == f"    {TITLE}"
    wide = await invoke(url, tmp_path, "incidents", "list", columns=140)
    assert wide.exit_code == 0, wide.output
    assert str(incident_id) in wide.output and "awaiting_approval" in wide.output and "KeyError" in wide.output


async def test_incidents_show_of_an_incident_without_work_and_of_no_incident(
    db: tuple[str, asyncpg.Pool], tmp_path: Path
) -> None:
    url, pool = db
    incident_id = uuid.uuid4()
    await open_incident(pool, incident_id)
    bare = await invoke(url, tmp_path, "incidents", "show", str(incident_id), "--diff")
    assert bare.exit_code == 0, bare.output
    assert "suspect:" not in bare.output
    assert "no patch: no fix was validated for this incident" in bare.output
    missing = await invoke(url, tmp_path, "incidents", "show", "ffffffff")
    assert missing.exit_code == 1 and "no incident matches 'ffffffff'" in missing.output


# ---------------------------------------------------------------- repos add


def git_repo(path: Path, branch: str, files: dict[str, str], *more_branches: str) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(textwrap.dedent(text))
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    steps = [["init", "-q", "-b", branch], ["add", "-A"], [*ident, "commit", "-q", "-m", "first"]]
    for args in [*steps, *(["branch", name] for name in more_branches)]:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


APP = {
    "app.py": "def double(x):\n    return 2 * x\n",
    "tests/test_app.py": """\
        from app import double


        def test_double():
            assert double(2) == 4


        def test_fails_on_this_python():
            assert double(2) == 5
        """,
}


async def registered(pool: asyncpg.Pool) -> dict[str, RepoConfig]:
    return {r.name: r for r in await repos.registered(pool)}


async def test_repos_add_refuses_a_default_branch_that_does_not_exist(
    db: tuple[str, asyncpg.Pool], tmp_path: Path
) -> None:
    url, pool = db
    path = git_repo(tmp_path / "app", "master", APP, "release")

    refused = await invoke(url, tmp_path, "repos", "add", "app", "--path", str(path))
    assert refused.exit_code == 2, refused.output
    assert f"branch 'main' does not exist in {path}; branches: master, release" in refused.output
    by_url = await invoke(url, tmp_path, "repos", "add", "app", "--path", f"file://{path}", "--default-branch", "dev")
    assert by_url.exit_code == 2 and f"branch 'dev' does not exist in file://{path}; branches: master" in by_url.output
    not_git = await invoke(url, tmp_path, "repos", "add", "app", "--path", str(tmp_path / "nowhere"))
    assert not_git.exit_code == 2 and f"cannot list the branches of {tmp_path / 'nowhere'}" in not_git.output
    bad_timeout = await invoke(url, tmp_path, "repos", "add", "app", "--path", str(path), "--test-timeout-s", "0")
    assert bad_timeout.exit_code == 2 and "invalid repository: test_timeout_s" in bad_timeout.output
    assert await registered(pool) == {}

    added = await invoke(url, tmp_path, "repos", "add", "app", "--path", str(path), "--default-branch", "master",
                         "--service", "api", "--setup-command", "pip install -e .[test]", "--setup-network",
                         "--test-timeout-s", "600")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "registered app" in added.output
    repo = (await registered(pool))["app"]
    assert (repo.default_branch, repo.services, repo.setup_command, repo.setup_network, repo.test_timeout_s) == (
        "master",
        ["api"],
        "pip install -e .[test]",
        True,
        600.0,
    )
    listed = await invoke(url, tmp_path, "repos", "list")
    assert "pip install -e .[test] (network)" in listed.output


@needs_bwrap
async def test_repos_add_check_tests_reports_the_baseline(db: tuple[str, asyncpg.Pool], tmp_path: Path) -> None:
    url, pool = db
    path = git_repo(tmp_path / "app", "main", APP)

    checked = await invoke(url, tmp_path, "repos", "add", "app", "--path", str(path), "--check-tests")
    assert checked.exit_code == 0, checked.output
    out = checked.output
    assert "baseline at main (" in out and "with `python -m pytest -q` in bubblewrap: 1 passed, 1 failed in" in out
    assert "only new failures count against a fix: 1 failed: tests/test_app.py::test_fails_on_this_python" in out
    assert "registered app" in out
    assert list(await registered(pool)) == ["app"]
    assert any((tmp_path / "envs" / "app").iterdir())  # made where fixgen looks: its first fix reuses it

    broken = await invoke(url, tmp_path, "repos", "add", "app2", "--path", str(path), "--check-tests",
                          "--test-command", "no-such-test-runner -q")  # fmt: skip
    assert broken.exit_code == 1, broken.output
    assert "exit 127, the command was not found" in broken.output
    assert "app2 was not registered" in broken.output
    assert list(await registered(pool)) == ["app"]


async def test_an_unsandboxed_baseline_keeps_its_environment_out_of_fixgens_cache(
    db: tuple[str, asyncpg.Pool], tmp_path: Path
) -> None:
    url, pool = db
    path = git_repo(tmp_path / "app", "main", APP)
    env = {"PAGERPATCH_SANDBOX__BACKEND": "unsandboxed", "PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED": "true"}
    checked = await run_cli("repos", "add", "app", "--path", str(path), "--check-tests", home=tmp_path / "home",
                            database_url=url, env=env)  # fmt: skip
    assert checked.exit_code == 0, checked.output
    assert "in unsandboxed: 1 passed, 1 failed" in checked.output
    assert not (tmp_path / "home" / "envs").exists()  # its set-up would point at a worktree that is gone
    assert list(await registered(pool)) == ["app"]

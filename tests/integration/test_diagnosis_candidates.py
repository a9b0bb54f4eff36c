"""Diagnosis on the histories real repositories have: cosmetic and test-only commits after the bug must not win.

Each scenario is a small git repository built here, with the shape of history that misled diagnosis on public
repositories (a docstring-only follow-up, a black reformatting, a "fix mypy" commit on a test file, a commit
listed in .git-blame-ignore-revs); the traceback is real, captured by running the broken code at HEAD, and
the suspect must be the bug commit, whose revert fixes it. A default branch that does not exist is an
explained, terminal diagnosis (also through the service on nats-server and Postgres: no breaker wait).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from nats.js import JetStreamContext

from pagerpatch.git import workspace
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.kernel import bus
from pagerpatch.settings import RepoConfig
from schemas import subjects
from schemas.events import DiagnosisReadyPayload, FrameVars, IncidentOpened, IncidentOpenedPayload, Severity
from services.diagnosis.adapters import GitCheckouts, GitHistory
from services.diagnosis.app import bootstrap, create_service
from services.diagnosis.domain.report import SuspectReport
from services.diagnosis.memory import MemoryAudit, MemoryRepos
from services.diagnosis.usecase import Diagnosis, find_suspect
from tests.integration.test_runtime import make_settings, stream_events, wait_done
from tests.support.git import Repo
from tests.support.stages import running_stage

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

TRIGGER = "from shop.pricing import apply_coupon; apply_coupon(100.0, 'NOPE')"
FIXED = "from shop.pricing import apply_coupon; assert apply_coupon(100.0, 'NOPE') == 100.0"
SAFE = """\
COUPONS = {"SAVE10": 0.1}


def apply_coupon(total, code):
    code = code.strip()
    rate = COUPONS.get(code, 0.0)
    return round(total * (1 - rate), 2)
"""
BROKEN = SAFE.replace("COUPONS.get(code, 0.0)", "COUPONS[code]")
DOCUMENTED = BROKEN.replace("code):\n", 'code):\n    """The total after the coupon `code`, if any."""\n')
# A long failing line (more than black's 88 columns) and how black rewraps it.
LONG_SAFE = """\
COUPONS = {"SAVE10": 0.1}


def apply_coupon(total, code):
    rate = COUPONS.get(code, 0.0) if total > 0 and code is not None and not code.startswith('internal') else 0.0
    return round(total * (1 - rate), 2)
"""
LONG_BROKEN = LONG_SAFE.replace("COUPONS.get(code, 0.0)", "COUPONS[code]")
INCIDENT: dict[str, Any] = {
    "fingerprint": "f" * 16, "title": "coupon fails", "service": "shop-api", "severity": Severity.P2, "repo": "shop"
}  # fmt: skip
BLACKENED = LONG_BROKEN.replace(
    "    rate = COUPONS[code] if total > 0 and code is not None and not code.startswith('internal') else 0.0\n",
    "    rate = (\n"
    "        COUPONS[code]\n"
    '        if total > 0 and code is not None and not code.startswith("internal")\n'
    "        else 0.0\n"
    "    )\n",
)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.init(tmp_path / "shop repo")


def assert_the_bug_commit_is_named(report: SuspectReport, bug: str) -> None:
    assert report.suspect is not None and report.suspect.sha == bug, report.root_cause
    payload = report.to_diagnosis("shop")
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == bug
    assert payload.exception_type == "KeyError"


def assert_its_revert_fixes_it(repo: Repo, bug: str) -> None:
    assert repo.run(FIXED).returncode != 0  # broken at HEAD...
    assert workspace.revert(repo.path, bug).ok
    fixed = repo.run(FIXED)
    assert fixed.returncode == 0, fixed.stderr  # ...and fixed by reverting the suspect


def test_a_docstring_only_follow_up_in_the_same_function_is_set_aside(repo: Repo) -> None:
    repo.commit({"shop/__init__.py": "", "shop/pricing.py": SAFE}, "initial import")
    bug = repo.commit({"shop/pricing.py": BROKEN}, "pricing: look coupons up directly", who="Eve")
    docs = repo.commit({"shop/pricing.py": DOCUMENTED}, "docs: tidy")

    trace = repo.trace(TRIGGER)
    report = find_suspect(GitHistory(repo.path), trace)

    assert f"{docs[:7]} docs: tidy (skipped: only docstrings changed in apply_coupon)" in report.tried
    assert report.regions[0].commit.sha == docs  # the function's history starts with it...
    assert_the_bug_commit_is_named(report, bug)  # ...but it is not the suspect
    assert_its_revert_fixes_it(repo, bug)
    assert report.confidence == 0.85  # the bug commit wrote the raising line itself


def test_a_black_reformatting_of_the_failing_line_is_set_aside(repo: Repo) -> None:
    repo.commit({"shop/__init__.py": "", "shop/pricing.py": LONG_SAFE}, "initial import")
    bug = repo.commit({"shop/pricing.py": LONG_BROKEN}, "pricing: look coupons up directly", who="Eve")
    fmt = repo.commit({"shop/pricing.py": BLACKENED}, "style: consistent formatting")

    trace = repo.trace(TRIGGER)
    plain = workspace.blame_line(repo.path, "shop/pricing.py", trace.frames[-1].line or 0)
    assert plain.sha == fmt  # blame alone, even ignoring whitespace, names the reformatting
    report = find_suspect(GitHistory(repo.path), trace)

    assert f"{fmt[:7]} style: consistent formatting (skipped: only comments or formatting changed in apply_coupon)" in (
        report.tried
    )
    assert fmt not in {c.sha for c in report.candidates}
    assert_the_bug_commit_is_named(report, bug)
    # Reverting it conflicts with the rewrapped line: fixgen falls through to `candidates` or reports the conflict.
    assert not workspace.revert(repo.path, bug).ok


def test_a_test_only_commit_on_a_test_frame_of_the_trace_is_set_aside(repo: Repo) -> None:
    test_v1 = "from shop.pricing import apply_coupon\n\n\ndef test_unknown_coupon():\n    apply_coupon(100, 'NOPE')\n"
    test_v2 = test_v1.replace("(100, 'NOPE')", "(100.0, 'NOPE')")
    repo.commit({"shop/__init__.py": "", "shop/pricing.py": SAFE}, "initial import")
    repo.commit({"tests/test_pricing.py": test_v1}, "tests: unknown coupons")
    bug = repo.commit({"shop/pricing.py": BROKEN}, "pricing: look coupons up directly", who="Eve")
    mypy = repo.commit({"tests/test_pricing.py": test_v2}, "fix mypy")

    trace = repo.trace("import tests.test_pricing as t; t.test_unknown_coupon()")
    assert [f.function for f in trace.frames[-2:]] == ["test_unknown_coupon", "apply_coupon"]
    report = find_suspect(GitHistory(repo.path), trace)

    assert report.blamed[1].file == "tests/test_pricing.py"
    assert f"{mypy[:7]} fix mypy (skipped: changed only test files: tests/test_pricing.py)" in report.tried
    assert all(c.sha != mypy for c in report.candidates)
    assert_the_bug_commit_is_named(report, bug)
    assert_its_revert_fixes_it(repo, bug)


def test_a_commit_listed_in_git_blame_ignore_revs_is_looked_through(repo: Repo) -> None:
    repo.commit({"shop/__init__.py": "", "shop/pricing.py": LONG_SAFE}, "initial import")
    bug = repo.commit({"shop/pricing.py": LONG_BROKEN}, "pricing: look coupons up directly", who="Eve")
    fmt = repo.commit({"shop/pricing.py": BLACKENED}, "style: black")
    repo.commit({".git-blame-ignore-revs": f"# black\n{fmt}\n"}, "chore: ignore the black commit in blame")

    report = find_suspect(GitHistory(repo.path), repo.trace(TRIGGER))

    assert f"{fmt[:7]} style: black (skipped: listed in .git-blame-ignore-revs)" in report.tried
    assert report.blamed[0].blame.sha == bug  # blame itself looked through the listed commit
    assert_the_bug_commit_is_named(report, bug)


async def test_the_reproduction_and_the_candidates_reach_the_payload(repo: Repo, tmp_path: Path) -> None:
    repo.commit({"shop/__init__.py": "", "shop/pricing.py": SAFE}, "initial import")
    bug = repo.commit({"shop/pricing.py": BROKEN}, "pricing: look coupons up directly", who="Eve")
    trace = repo.run(TRIGGER).stderr
    captured = [FrameVars(file=f"{repo.path}/shop/pricing.py", function="apply_coupon", line=6,
                          vars={"total": 100.0, "code": "NOPE"})]  # fmt: skip
    payload = await diagnosis_of(repo, tmp_path, stack_trace=trace, frame_vars=captured)

    assert payload.suspect_commit is not None and payload.suspect_commit.sha == bug
    assert payload.exception_type == "KeyError"
    assert payload.reproduction == FrameVars(
        file="shop/pricing.py", function="apply_coupon", line=6, vars={"total": 100.0, "code": "NOPE"}
    )
    assert len(payload.candidates) == 1 and payload.candidates[0].subject == "initial import"


# ---------------------------------------------------------------- a default branch that does not exist


async def diagnosis_of(repo: Repo, tmp_path: Path, **fields: Any) -> DiagnosisReadyPayload:
    """The use case on git worktrees (cached clone, per-incident worktree) for one incident."""
    cfg = RepoConfig(name="shop", path=str(repo.path), services=["shop-api"])
    diagnosis = Diagnosis(
        repos=MemoryRepos({"shop": cfg}), checkouts=GitCheckouts(Workspaces(tmp_path / "ws")), audit=MemoryAudit()
    )
    incident = IncidentOpenedPayload(**INCIDENT, **fields)
    payload = await diagnosis.diagnose(uuid.UUID(int=7), incident)
    assert payload is not None
    return payload


MISSING_MAIN = "default branch 'main' does not exist in shop; set default_branch (the repository's HEAD is 'master')"


@pytest.fixture
def master_repo(tmp_path: Path) -> tuple[Repo, str]:
    """A repository whose only branch is `master`, configured with the default `main`; and its head."""
    repo = Repo.init(tmp_path / "master repo", branch="master")
    repo.commit({"shop/__init__.py": "", "shop/pricing.py": SAFE}, "initial import")
    return repo, repo.commit({"shop/pricing.py": BROKEN}, "pricing: look coupons up directly", who="Eve")


async def test_a_missing_default_branch_is_an_explained_terminal_diagnosis(
    master_repo: tuple[Repo, str], tmp_path: Path
) -> None:
    repo, head = master_repo
    payload = await diagnosis_of(repo, tmp_path, stack_trace=repo.run(TRIGGER).stderr, commit="f" * 40)

    assert payload.suspect_commit is None and payload.confidence == 0.0
    assert MISSING_MAIN in payload.root_cause and payload.tried[-1] == MISSING_MAIN
    assert payload.tried[0] == f"commit {'f' * 40} from the alert (skipped: not in shop)"
    assert payload.base_commit == head


async def test_the_service_publishes_the_missing_branch_diagnosis_at_once_without_a_breaker_wait(
    master_repo: tuple[Repo, str], nats_url: str, fresh_db: str, js: JetStreamContext, tmp_path: Path
) -> None:
    repo, head = master_repo
    settings = make_settings(nats_url, fresh_db, tmp_path).model_copy(
        update={"repos": [RepoConfig(name="shop", path=str(repo.path), services=["shop-api"])]}
    )
    async with running_stage(create_service(), bootstrap, settings, js) as svc:
        payload = IncidentOpenedPayload(**INCIDENT, stack_trace=repo.run(TRIGGER).stderr)  # no commit: `main`
        opened = IncidentOpened.create(payload, source="triage", incident_id=uuid.uuid4())
        await bus.publish(svc.broker, opened)
        await wait_done(svc, opened)  # within seconds: a git failure would wait out the breaker's 30 s instead
        ready = [json.loads(m)["payload"] for m in await stream_events(js, subjects.DIAGNOSIS_READY)]
        assert [(r["suspect_commit"], r["confidence"], r["base_commit"], r["tried"]) for r in ready] == [
            (None, 0.0, head, [MISSING_MAIN])
        ]

"""The notifier with GitHub configured, against the fake GitHub (real PyGithub) and Postgres (outbox, pull request
records, incidents): exactly one pull request however often the approval is delivered, also after a crash right
after the GitHub call; rate limits wait then succeed; a bad token is one terminal notification; pr.event merged /
closed ends the incident."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from pagerpatch.git.repos import MemoryRepos
from pagerpatch.incidents import IncidentRepository
from pagerpatch.kernel import failpoints
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Transient
from pagerpatch.scm import LocalGitScm
from pagerpatch.settings import RepoConfig, Settings
from schemas.events import (
    DiagnosisReadyPayload,
    FixApproved,
    FixApprovedPayload,
    FixValidatedPayload,
    NotificationSent,
    PrEvent,
    PrEventPayload,
    PrOpened,
    RiskAssessment,
    RiskLevel,
    TestRun,
)
from services.notifier.adapters import PgNotifications, PgOutbox, PgPullRequests
from services.notifier.settings import make_forge
from services.notifier.usecase import Notifier
from tests.support.fake_github import FakeGithub, serving
from tests.support.git import Repo

pytestmark = pytest.mark.integration


@pytest.fixture
def fake_github(tmp_path: Path) -> Iterator[FakeGithub]:
    with serving(tmp_path / "fake-github") as server:
        yield server


class Crash(BaseException):
    """The process died at the failpoint (a SIGKILL, without killing the test runner)."""


def world(tmp_path: Path, fake: FakeGithub, pool: asyncpg.Pool, **github: object) -> tuple[Notifier, str, str]:
    """A source repository on the fake GitHub as acme/shop, a notifier configured for it, and a fix's base+patch."""
    src = Repo.init(tmp_path / "src")
    base = src.commit({"shop/cart.py": "def total(items):\n    return sum(items) * 2\n"}, "cart")
    fake.add_repo("acme/shop", src.path)
    (src.path / "shop/cart.py").write_text("def total(items):\n    return sum(items)\n")
    patch = src.git("diff")
    src.git("checkout", "-q", "--", ".")
    settings = Settings(
        github={"api_url": fake.url, "token": "ghp_fake_token", "write_interval_s": 0, "timeout_s": 2, **github},
        service_catalog={"checkout": {"repo": "shop", "owners": ["@alice", "@acme/payments"]}},
    )
    repo = RepoConfig(name="shop", path=str(src.path), github={"repo": "acme/shop", "labels": ["pagerpatch"]})
    notifier = Notifier(
        scm=LocalGitScm(tmp_path / "home"),
        repos=MemoryRepos.of(repo),
        pull_requests=PgPullRequests(pool),
        notifications=PgNotifications(pool),
        forge=make_forge(settings, PgOutbox(pool)),
        incidents=IncidentRepository(pool),
    )
    return notifier, base, patch


def approved(incident: uuid.UUID, base: str, patch: str) -> FixApproved:
    diagnosis = DiagnosisReadyPayload(repo="shop", base_commit=base, root_cause="total doubles the sum",
                                      confidence=0.9, title="cart total doubled")  # fmt: skip
    tests = TestRun(command="pytest", passed=True, exit_code=0, summary="3 passed", duration_s=1.0)
    fix = FixValidatedPayload(repo="shop", base_commit=base, strategy="revert-suspect", patch=patch,
                              commit_message="Fix cart total\n", files_changed=["shop/cart.py"], tests=tests,
                              attempts=1, diagnosis=diagnosis, proof="proved", proof_detail="test_total")  # fmt: skip
    risk = RiskAssessment(level=RiskLevel.LOW, score=5, reasons=["small"])
    payload = FixApprovedPayload(risk=risk, approved_by="policy", fix=fix)
    when = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    return FixApproved.create(payload, source="review", incident_id=incident, occurred_at=when)


async def new_incident(pool: asyncpg.Pool) -> uuid.UUID:
    incident = uuid.uuid4()
    await pool.execute(
        """INSERT INTO incidents (id, fingerprint, state, title, service, severity)
           VALUES ($1, $2, 'approved', 'cart total doubled', 'checkout', 'P2')""",
        incident, str(incident),
    )  # fmt: skip
    return incident


async def test_one_pull_request_however_often_the_approval_comes(
    tmp_path: Path, fake_github: FakeGithub, pool: asyncpg.Pool
) -> None:
    notifier, base, patch = world(tmp_path, fake_github, pool)
    incident = await new_incident(pool)
    event = approved(incident, base, patch)
    first = await notifier.open_pull_request(event, incident, Breakers())
    again = await notifier.open_pull_request(event, incident, Breakers())
    assert [e.event_id for e in first] == [e.event_id for e in again]
    opened = first[0]
    assert isinstance(opened, PrOpened) and opened.payload.number == 1 and opened.payload.provider == "github"
    [pr] = fake_github.pulls("acme/shop")
    assert (pr["title"], pr["base"]["ref"], pr["head"]["ref"]) == (
        "fix: cart total doubled",
        "main",
        f"pagerpatch/{incident}",
    )
    assert pr["body"].startswith("Proved: test_total.") and "## Diagnosis" in pr["body"]
    assert [lb["name"] for lb in pr["labels"]] == ["pagerpatch"]
    assert [u["login"] for u in pr["requested_reviewers"]] == ["alice"]  # the catalog's owners
    assert [t["slug"] for t in pr["requested_teams"]] == ["payments"]
    assert (
        fake_github.show("acme/shop", pr["head"]["sha"], "shop/cart.py") == "def total(items):\n    return sum(items)\n"
    )
    assert len(fake_github.calls("POST", r"/pulls$")) == 1
    row = await pool.fetchrow(
        "SELECT state, number, url, head_commit FROM pull_requests WHERE incident_id = $1", incident
    )
    assert (row["state"], row["number"], row["url"]) == ("open", 1, pr["html_url"])
    assert row["head_commit"] == pr["head"]["sha"] == opened.payload.head_commit
    outbox = await pool.fetch("SELECT kind, target, state, remote_id, attempts FROM outbox")
    assert [dict(r) for r in outbox] == [
        {"kind": "github.pr", "target": "acme/shop", "state": "done", "remote_id": "1", "attempts": 1}
    ]


async def test_a_crash_right_after_the_github_call_still_makes_one_pull_request(
    tmp_path: Path, fake_github: FakeGithub, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier, base, patch = world(tmp_path, fake_github, pool)
    incident = await new_incident(pool)
    event = approved(incident, base, patch)

    def die(name: str) -> None:
        if name == "notifier.after_github":
            raise Crash(name)

    monkeypatch.setattr(failpoints, "reached", die)
    with pytest.raises(Crash):
        await notifier.open_pull_request(event, incident, Breakers())
    assert len(fake_github.pulls("acme/shop")) == 1  # GitHub has it; the outbox does not know yet
    assert await pool.fetchval("SELECT state FROM outbox") == "pending"
    monkeypatch.setattr(failpoints, "reached", lambda name: None)
    opened, _ = await notifier.open_pull_request(event, incident, Breakers())  # the redelivery
    assert isinstance(opened, PrOpened) and opened.payload.number == 1
    assert len(fake_github.pulls("acme/shop")) == 1 and len(fake_github.calls("POST", r"/pulls$")) == 1
    assert len(fake_github.calls("POST", r"/git/commits$")) == 1
    assert await pool.fetchval("SELECT state FROM outbox") == "done"


async def test_rate_limits_and_5xx_wait_then_succeed(
    tmp_path: Path, fake_github: FakeGithub, pool: asyncpg.Pool
) -> None:
    notifier, base, patch = world(tmp_path, fake_github, pool)
    incident = await new_incident(pool)
    event = approved(incident, base, patch)
    fake_github.inject("POST", r"/pulls$", 429, {"message": "API rate limit exceeded for user ID 1."},
                       headers={"Retry-After": "7"})  # fmt: skip
    with pytest.raises(Transient) as waited:
        await notifier.open_pull_request(event, incident, Breakers())
    assert waited.value.retry_after_s == 7
    fake_github.inject("POST", r"/pulls$", 503)
    with pytest.raises(Transient, match="github call failed"):  # behind the breaker: the message waits
        await notifier.open_pull_request(event, incident, Breakers())
    row = await pool.fetchrow("SELECT state, attempts, last_error FROM outbox")
    assert (row["state"], row["attempts"]) == ("pending", 2) and "503" in row["last_error"]
    opened, _ = await notifier.open_pull_request(event, incident, Breakers())
    assert isinstance(opened, PrOpened) and len(fake_github.pulls("acme/shop")) == 1
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0


async def test_a_bad_token_is_one_terminal_notification(
    tmp_path: Path, fake_github: FakeGithub, pool: asyncpg.Pool
) -> None:
    notifier, base, patch = world(tmp_path, fake_github, pool, token="ghp_revoked")
    incident = await new_incident(pool)
    event = approved(incident, base, patch)
    [sent] = await notifier.open_pull_request(event, incident, Breakers())
    assert isinstance(sent, NotificationSent) and sent.payload.kind == "pr.failed"
    assert "on GitHub acme/shop" in sent.payload.text and "401 Bad credentials" in sent.payload.text
    calls = len(fake_github.requests)
    [again] = await notifier.open_pull_request(event, incident, Breakers())  # redelivered: no new call
    assert (again.event_id, again.payload) == (sent.event_id, sent.payload)
    assert len(fake_github.requests) == calls and fake_github.pulls("acme/shop") == []
    assert await pool.fetchval("SELECT state FROM outbox") == "failed"
    assert await pool.fetchval("SELECT count(*) FROM notifications WHERE kind = 'pr.failed'") == 1


def pr_event(action: str, incident: uuid.UUID | None, number: int = 1) -> PrEvent:
    branch = f"pagerpatch/{incident}" if incident else "feature/unrelated"
    payload = PrEventPayload(provider="github", action=action, repo="acme/shop", number=number,
                             branch=branch, actor="bob")  # fmt: skip
    return PrEvent.create(payload, source="ingest")


@pytest.mark.parametrize(("action", "state", "outcome"), [
    ("merged", "resolved", "fix merged (pull request #1 merged by bob)"),
    ("closed", "pr_closed", "pull request #1 closed without merging by bob"),
])  # fmt: skip
async def test_pr_event_ends_the_incident(
    tmp_path: Path, fake_github: FakeGithub, pool: asyncpg.Pool, action: str, state: str, outcome: str
) -> None:
    notifier, base, patch = world(tmp_path, fake_github, pool)
    incident = await new_incident(pool)
    await notifier.open_pull_request(approved(incident, base, patch), incident, Breakers())
    event = pr_event(action, incident)
    [note] = await notifier.pr_event(event)
    assert isinstance(note, NotificationSent) and note.incident_id == incident and note.payload.kind == f"pr.{action}"
    view = await IncidentRepository(pool).get(incident)
    assert view is not None and (view.state, view.outcome) == (state, outcome)
    assert await pool.fetchval("SELECT state FROM pull_requests WHERE incident_id = $1", incident) == action
    [again] = await notifier.pr_event(event)  # redelivered: same answer, nothing changes
    assert (again.event_id, again.payload) == (note.event_id, note.payload)
    assert await pool.fetchval("SELECT count(*) FROM notifications WHERE incident_id = $1 AND kind = $2",
                               incident, f"pr.{action}") == 1  # fmt: skip


async def test_pr_event_for_an_unknown_pull_request_is_acked(
    tmp_path: Path, fake_github: FakeGithub, pool: asyncpg.Pool
) -> None:
    notifier, _, _ = world(tmp_path, fake_github, pool)
    assert await notifier.pr_event(pr_event("merged", None, number=99)) == []
    assert await notifier.pr_event(pr_event("reopened", uuid.uuid4())) == []

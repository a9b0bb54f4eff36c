"""The incident's Linear issue on Postgres and a fake Linear GraphQL API: opened once for fix.failed and for an
approval waiting too long, found again by the incident id after a crash, refusals terminal, rate limits waited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from pagerpatch.kernel.errors import Transient
from pagerpatch.settings import LinearSettings, SlackSettings
from schemas.envelope import Event
from schemas.events import NotificationSent
from services.notifier.adapters import PgNotifications, PgOutbox, PgThreads
from services.notifier.linear import LinearGraphql
from services.notifier.slack import SlackWebApi
from services.notifier.thread import IncidentThread, ThreadConfig
from tests.support.fake_linear import API_KEY, FakeLinear
from tests.support.fake_linear import fake_linear as fake_linear
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack
from tests.support.thread_story import story

pytestmark = pytest.mark.integration
WAIT_S = 600.0


def make_thread(pool: asyncpg.Pool, linear: FakeLinear, slack: FakeSlack | None = None) -> IncidentThread:
    ls = LinearSettings(api_url=linear.api_url, api_key=SecretStr(API_KEY), teams={"payments": "PAY"},
                        approval_wait_s=WAIT_S)  # fmt: skip
    ss = (
        SlackSettings(api_url=slack.api_url, bot_token=SecretStr(TOKEN), default_channel="C0PPINC01") if slack else None
    )
    config = ThreadConfig(slack_channel=ss.channel_for if ss else (lambda team: None), linear_team=ls.team_for,
                          approval_wait_s=WAIT_S)  # fmt: skip
    return IncidentThread(PgThreads(pool), PgOutbox(pool), PgNotifications(pool), SlackWebApi(ss) if ss else None,
                          LinearGraphql(ls), config)  # fmt: skip


@pytest.fixture
async def thread(pool: asyncpg.Pool, fake_linear: FakeLinear) -> AsyncIterator[IncidentThread]:
    yield make_thread(pool, fake_linear)


async def run(thread: IncidentThread, event: Event[Any]) -> list[Event[Any]]:
    for _ in range(20):
        try:
            return await thread.on_event(event)
        except Transient as exc:
            await asyncio.sleep(min(exc.retry_after_s, 2.0))
    raise AssertionError("still waiting after 20 attempts")


async def test_fix_failed_opens_one_issue_with_the_diagnosis_and_the_way_back(
    thread: IncidentThread,
    fake_linear: FakeLinear,
    pool: asyncpg.Pool,
) -> None:
    s = story()
    await run(thread, s.opened)
    await run(thread, s.diagnosis)
    assert fake_linear.issues == []  # nothing to escalate yet
    out = await run(thread, s.failed)
    assert [(o.payload.channel, o.payload.kind) for o in out if isinstance(o, NotificationSent)] == [
        ("linear", "linear.issue")]  # fmt: skip
    assert len(fake_linear.issues) == 1
    issue = fake_linear.issues[0]
    assert issue.team_key == "PAY" and issue.title.startswith("[P1] No fix found: KeyError")
    for expected in ("every candidate revert", "apply_coupon indexes COUPONS", "pricing: simplify coupon lookup",
                     f"pagerpatch incident {s.incident_id}", f"pagerpatch incidents show {s.incident_id}"):  # fmt: skip
        assert expected in issue.description, expected
    assert fake_linear.operations("issues")  # searched by the incident id before creating
    await run(thread, s.failed)  # redelivered
    assert len(fake_linear.issues) == 1 and len(fake_linear.operations("issueCreate")) == 1
    row = await pool.fetchrow("SELECT state, remote_id, remote_url FROM outbox WHERE kind = 'linear.issue'")
    assert dict(row) == {"state": "done", "remote_id": issue.id, "remote_url": issue.url}


async def test_a_crash_after_issue_create_finds_the_issue_by_the_incident_id(
    thread: IncidentThread,
    fake_linear: FakeLinear,
    pool: asyncpg.Pool,
) -> None:
    s = story()
    await run(thread, s.opened)
    api = LinearGraphql(LinearSettings(api_url=fake_linear.api_url, api_key=SecretStr(API_KEY)))
    # The state a SIGKILL at notifier.after_linear leaves: the row pending, the issue created.
    await PgOutbox(pool).begin(s.incident_id, "linear.issue", "PAY")
    created = await api.create_issue("PAY", "t", f"x\npagerpatch incident {s.incident_id}\n")
    await run(thread, s.failed)
    assert len(fake_linear.issues) == 1 and len(fake_linear.operations("issueCreate")) == 1
    assert await pool.fetchval("SELECT remote_id FROM outbox WHERE kind = 'linear.issue'") == created.id


async def test_authentication_error_is_terminal_with_the_reason(
    thread: IncidentThread,
    fake_linear: FakeLinear,
    pool: asyncpg.Pool,
) -> None:
    s = story()
    await run(thread, s.opened)
    fake_linear.fail("authentication_error")
    out = await thread.on_event(s.failed)
    assert [o.payload.kind for o in out if isinstance(o, NotificationSent)] == ["linear.failed"]
    assert "authenticate" in out[0].payload.text and "authentication error" in out[0].payload.text
    row = await pool.fetchrow("SELECT state, last_error FROM outbox WHERE kind = 'linear.issue'")
    assert row["state"] == "failed"
    calls = len(fake_linear.calls)
    await thread.on_event(s.failed)  # redelivered: not tried again
    assert len(fake_linear.calls) == calls and fake_linear.issues == []


async def test_rate_limit_waits_with_retry_after_then_creates_once(
    thread: IncidentThread,
    fake_linear: FakeLinear,
) -> None:
    s = story()
    await run(thread, s.opened)
    fake_linear.fail("ratelimited", retry_after=1)
    with pytest.raises(Transient) as waited:
        await thread.on_event(s.failed)
    assert waited.value.retry_after_s == 1.0
    await run(thread, s.failed)
    assert len(fake_linear.issues) == 1


async def test_an_approval_waiting_too_long_opens_one_issue_and_the_slack_root_links_it(
    pool: asyncpg.Pool,
    fake_linear: FakeLinear,
    fake_slack: FakeSlack,
) -> None:
    thread = make_thread(pool, fake_linear, fake_slack)
    waiting, settled = story(), story(title="settled in time")
    for s in (waiting, settled):
        for event in (s.opened, s.diagnosis, s.validated, s.requested):
            await run(thread, event)
    await run(thread, settled.decided)  # a click by someone not in policy.slack_approvers: still waiting
    await run(thread, settled.approved)  # review approved it
    requested_at = waiting.requested.occurred_at
    assert await thread.sweep_waiting(requested_at + timedelta(seconds=WAIT_S - 5)) == 0  # not long enough yet
    assert await thread.sweep_waiting(requested_at + timedelta(seconds=WAIT_S + 5)) == 1
    assert await thread.sweep_waiting(requested_at + timedelta(seconds=WAIT_S * 3)) == 0  # once
    assert len(fake_linear.issues) == 1
    issue = fake_linear.issues[0]
    assert "Fix waiting for approval" in issue.title and "HIGH (score 7)" in issue.description
    assert f"pagerpatch incident {waiting.incident_id}" in issue.description
    root = next(m for m in fake_slack.messages("C0PPINC01", roots=True) if "KeyError" in m.text)
    assert issue.url in str(root.blocks)


async def test_an_approval_of_a_team_without_a_linear_team_is_left_out_of_the_sweep_once(
    thread: IncidentThread,
    fake_linear: FakeLinear,
    pool: asyncpg.Pool,
) -> None:
    unmapped, mapped = story(team="search"), story(title="payments waits")  # linear.teams has payments only
    for s in (unmapped, mapped):
        for event in (s.opened, s.diagnosis, s.validated, s.requested):
            await run(thread, event)
    later = max(unmapped.requested.occurred_at, mapped.requested.occurred_at) + timedelta(seconds=WAIT_S + 5)
    assert await thread.sweep_waiting(later) == 1  # only the issue actually opened is counted
    assert await thread.sweep_waiting(later) == 0  # the unmapped one does not come back every round
    assert [i.team_key for i in fake_linear.issues] == ["PAY"]
    escalated = await pool.fetchval("SELECT escalated_at FROM notifier_threads WHERE incident_id = $1",
                                    unmapped.incident_id)  # fmt: skip
    assert escalated is not None


async def test_a_5xx_waits_and_a_timeout_after_issue_create_finds_the_issue_instead_of_a_second(
    pool: asyncpg.Pool,
    fake_linear: FakeLinear,
) -> None:
    s = story()
    ls = LinearSettings(api_url=fake_linear.api_url, api_key=SecretStr(API_KEY), teams={"payments": "PAY"},
                        timeout_s=1)  # fmt: skip
    thread = IncidentThread(PgThreads(pool), PgOutbox(pool), PgNotifications(pool), None, LinearGraphql(ls),
                            ThreadConfig(linear_team=ls.team_for))  # fmt: skip
    await run(thread, s.opened)
    fake_linear.server_error()
    with pytest.raises(Transient, match="Internal server error"):
        await thread.on_event(s.failed)
    fake_linear.answer_late("issueCreate", 2.5)
    with pytest.raises(Transient, match="Timeout"):
        await thread.on_event(s.failed)
    assert len(fake_linear.issues) == 1  # created; the answer never reached the notifier
    await run(thread, s.failed)
    [issue] = fake_linear.issues
    assert await pool.fetchval("SELECT remote_id FROM outbox WHERE kind = 'linear.issue'") == issue.id

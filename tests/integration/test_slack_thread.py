"""The incident's Slack thread on Postgres and a fake Slack speaking the Web API (slack_sdk pointed at it): one root
message updated at every stage, each reply once, approval buttons then the decision, terminal errors, 429 waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from pagerpatch.kernel.errors import Transient
from pagerpatch.settings import SlackSettings
from schemas.envelope import Event
from schemas.events import NotificationSent
from services.notifier import domain_slack
from services.notifier.adapters import PgNotifications, PgOutbox, PgThreads
from services.notifier.slack import SlackWebApi
from services.notifier.thread import IncidentThread, ThreadConfig
from tests.support.fake_slack import TOKEN, DroppingProxy, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack
from tests.support.thread_story import APPROVER, story

pytestmark = pytest.mark.integration
CHANNEL = "C0PPINC01"


def slack_settings(fake: FakeSlack, **kw: Any) -> SlackSettings:
    return SlackSettings(api_url=fake.api_url, bot_token=SecretStr(TOKEN), channels={"payments": CHANNEL}, **kw)


@pytest.fixture
async def thread(pool: asyncpg.Pool, fake_slack: FakeSlack) -> AsyncIterator[IncidentThread]:
    s = slack_settings(fake_slack)
    config = ThreadConfig(slack_channel=s.channel_for, slack_approvers=frozenset({APPROVER}))
    yield IncidentThread(PgThreads(pool), PgOutbox(pool), PgNotifications(pool), SlackWebApi(s), None, config)


async def run(thread: IncidentThread, event: Event[Any]) -> list[Event[Any]]:
    """Like the handoff: a Transient waits (here briefly) and the whole handler runs again."""
    for _ in range(20):
        try:
            return await thread.on_event(event)
        except Transient as exc:
            await asyncio.sleep(min(exc.retry_after_s, 2.0))
    raise AssertionError("still waiting after 20 attempts")


def section_texts(blocks: list[dict[str, Any]]) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields", [])] + [e.get("text", "") for e in b.get("elements", [])]
    return "\n".join(str(t) for t in out)


async def test_one_root_updated_at_every_stage_replies_once_and_redelivery_repeats_nothing(
    thread: IncidentThread,
    fake_slack: FakeSlack,
    pool: asyncpg.Pool,
) -> None:
    s = story()
    shown = []
    for event in s.happy_path():
        out = await run(thread, event)
        assert [o.type for o in out] == ["notification.sent"]
        assert isinstance(out[0], NotificationSent) and out[0].payload.kind == "slack.thread"
        roots = fake_slack.messages(CHANNEL, roots=True)
        assert len(roots) == 1
        shown.append(section_texts(roots[0].blocks))
    root = fake_slack.messages(CHANNEL, roots=True)[0]
    assert root.metadata == {"event_type": "pagerpatch_incident", "event_payload": {"incident_id": str(s.incident_id)}}
    # Every stage changed what the root shows, and the final version carries each of them.
    assert len(set(shown)) == len(shown)
    final = shown[-1]
    for expected in ("KeyError", "P1", "tier 0 service", "Diagnosis", "pricing: simplify coupon lookup", "proved",
                     "12 passed", "HIGH", "Approved by jtorrance", "https://github.com/acme/shop/pull/7|",
                     "pull request opened"):  # fmt: skip
        assert expected in final, expected
    assert len(fake_slack.called("chat.postMessage")) == 1 + 4  # the root, 3 replies, the approval message
    updates = len(fake_slack.called("chat.update"))
    replies = fake_slack.replies(CHANNEL, root.ts)
    kinds = [r.metadata["event_payload"]["kind"] for r in replies if r.metadata]
    assert kinds == ["diagnosis.ready", "fix.validated", "approval", "pr.opened"]

    for event in s.happy_path():  # a redelivery of every event: nothing is posted or updated again
        await run(thread, event)
    assert len(fake_slack.called("chat.postMessage")) == 5
    assert len(fake_slack.called("chat.update")) == updates
    rows = await pool.fetch("SELECT kind, state FROM outbox WHERE incident_id = $1 ORDER BY kind", s.incident_id)
    assert {r["kind"]: r["state"] for r in rows} == {
        "slack.root": "done", "slack.approval": "done", "slack.reply:diagnosis.ready": "done",
        "slack.reply:fix.validated": "done", "slack.reply:pr.opened": "done",
    }  # fmt: skip


async def test_events_out_of_order_create_the_root_on_first_need(
    thread: IncidentThread,
    fake_slack: FakeSlack,
) -> None:
    s = story()
    await run(thread, s.diagnosis)  # before incident.opened
    roots = fake_slack.messages(CHANNEL, roots=True)
    assert len(roots) == 1 and "Diagnosis" in section_texts(roots[0].blocks)
    await run(thread, s.opened)
    roots = fake_slack.messages(CHANNEL, roots=True)
    assert len(roots) == 1
    text = section_texts(roots[0].blocks)
    assert "Diagnosis" in text and "checkout" in text  # the later event added to what the first one showed


async def test_a_crash_between_the_post_and_the_record_finds_the_root_instead_of_posting_again(
    thread: IncidentThread,
    fake_slack: FakeSlack,
    pool: asyncpg.Pool,
) -> None:
    s = story()
    # The state a SIGKILL at notifier.after_slack leaves: the outbox row pending, the message in the channel.
    await PgOutbox(pool).begin(s.incident_id, "slack.root", CHANNEL)
    api = SlackWebApi(slack_settings(fake_slack))
    posted = await api.post(CHANNEL, domain_slack.root_message(s.incident_id, {}),
                            metadata=domain_slack.root_metadata(s.incident_id))  # fmt: skip
    await run(thread, s.opened)
    assert len(fake_slack.messages(CHANNEL, roots=True)) == 1
    assert fake_slack.called("conversations.history")  # looked up by its metadata
    row = await pool.fetchrow("SELECT state, remote_id FROM outbox WHERE kind = 'slack.root'")
    assert dict(row) == {"state": "done", "remote_id": posted.id}
    assert "checkout" in section_texts(fake_slack.message(CHANNEL, posted.id).blocks)  # then updated in place


async def test_approval_buttons_then_the_decision_replaces_them(
    thread: IncidentThread,
    fake_slack: FakeSlack,
) -> None:
    s = story()
    for event in (s.opened, s.validated, s.requested):
        await run(thread, event)
    root = fake_slack.messages(CHANNEL, roots=True)[0]
    approval = next(
        r for r in fake_slack.replies(CHANNEL, root.ts) if (r.metadata or {})["event_payload"]["kind"] == "approval"
    )
    actions = [b for b in approval.blocks if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions[0]["elements"]] == [
        ("pagerpatch.approve", str(s.incident_id)), ("pagerpatch.reject", str(s.incident_id))]  # fmt: skip

    await run(thread, s.click("U999STRANGER", name="mallory"))  # not in policy.slack_approvers
    approval = fake_slack.message(CHANNEL, approval.ts)
    assert any(b["type"] == "actions" for b in approval.blocks)  # still waiting
    refused = [r for r in fake_slack.replies(CHANNEL, root.ts) if "did not count" in r.text]
    assert len(refused) == 1

    await run(thread, s.decided)
    approval = fake_slack.message(CHANNEL, approval.ts)
    assert not any(b["type"] == "actions" for b in approval.blocks)
    text = section_texts(approval.blocks)
    assert "Approved* by jtorrance at " in text and s.decided.occurred_at.isoformat()[:16].replace("T", " ") in text
    await run(thread, s.approved)  # review's answer: the same decision, nothing changes
    assert fake_slack.message(CHANNEL, approval.ts).edited == 1


async def test_channel_not_found_is_terminal_with_the_reason_and_never_retried(
    thread: IncidentThread,
    fake_slack: FakeSlack,
    pool: asyncpg.Pool,
) -> None:
    s = story()
    fake_slack.fail("chat.postMessage", "channel_not_found")
    out = await thread.on_event(s.opened)
    assert len(out) == 1 and isinstance(out[0], NotificationSent)
    assert out[0].payload.kind == "slack.failed" and "channel_not_found" in out[0].payload.text
    row = await pool.fetchrow("SELECT state, last_error FROM outbox WHERE kind = 'slack.root'")
    assert row["state"] == "failed" and "channel_not_found" in row["last_error"]
    notes = await pool.fetch("SELECT channel, kind FROM notifications")
    assert [tuple(n) for n in notes] == [("slack", "slack.failed")]
    calls = len(fake_slack.calls)
    assert await thread.on_event(s.diagnosis) == []  # later events do not try again
    assert len(fake_slack.calls) == calls


@pytest.mark.parametrize("error", ["not_in_channel", "invalid_auth"])
async def test_other_refusals_are_terminal_too(
    thread: IncidentThread,
    fake_slack: FakeSlack,
    error: str,
) -> None:
    assert error in domain_slack.TERMINAL_ERRORS
    fake_slack.fail("chat.postMessage", error)
    out = await thread.on_event(story().opened)
    assert out[0].payload.kind == "slack.failed" and error in out[0].payload.text
    assert fake_slack.messages(CHANNEL) == []


async def test_rate_limited_waits_with_retry_after_then_posts_once(
    thread: IncidentThread,
    fake_slack: FakeSlack,
) -> None:
    s = story()
    fake_slack.rate_limit("chat.postMessage", retry_after=1, times=2)
    with pytest.raises(Transient) as waited:
        await thread.on_event(s.opened)
    assert waited.value.retry_after_s == 1.0
    await run(thread, s.opened)
    assert len(fake_slack.messages(CHANNEL, roots=True)) == 1
    assert [c.status for c in fake_slack.called("chat.postMessage", ok_only=False)] == [429, 429, 200]


def thread_at(pool: asyncpg.Pool, settings: SlackSettings) -> IncidentThread:
    config = ThreadConfig(slack_channel=settings.channel_for, slack_approvers=frozenset({APPROVER}))
    return IncidentThread(PgThreads(pool), PgOutbox(pool), PgNotifications(pool), SlackWebApi(settings), None, config)


async def test_an_answer_lost_after_slack_posted_is_looked_up_not_posted_again(
    pool: asyncpg.Pool,
    fake_slack: FakeSlack,
) -> None:
    """The client does not re-send chat.postMessage on its own after a dropped connection (Slack may have posted
    it): the message waits, and the retry finds the root by its metadata."""
    s = story()
    with DroppingProxy(fake_slack, "chat.postMessage") as proxy:
        settings = SlackSettings(api_url=proxy.api_url, bot_token=SecretStr(TOKEN), channels={"payments": CHANNEL})
        thread = thread_at(pool, settings)
        with pytest.raises(Transient, match=r"chat\.postMessage"):
            await thread.on_event(s.opened)
        assert proxy.dropped == 1 and len(fake_slack.messages(CHANNEL, roots=True)) == 1  # posted, answer lost
        await run(thread, s.opened)
    assert len(fake_slack.messages(CHANNEL, roots=True)) == 1
    assert len(fake_slack.called("chat.postMessage")) == 1 and fake_slack.called("conversations.history")


async def test_a_timeout_after_slack_posted_finds_the_root_instead_of_posting_again(
    pool: asyncpg.Pool,
    fake_slack: FakeSlack,
) -> None:
    s = story()
    thread = thread_at(pool, slack_settings(fake_slack, timeout_s=1))
    fake_slack.answer_late("chat.postMessage", 2.5)
    with pytest.raises(Transient, match=r"chat\.postMessage"):
        await thread.on_event(s.opened)
    await run(thread, s.opened)
    await asyncio.sleep(2)  # the late answer has been sent by now: still one root
    assert len(fake_slack.messages(CHANNEL, roots=True)) == 1
    assert await pool.fetchval("SELECT state FROM outbox WHERE kind = 'slack.root'") == "done"


@pytest.mark.parametrize("method", ["chat.postMessage", "chat.update"])
async def test_a_5xx_waits_then_succeeds(thread: IncidentThread, fake_slack: FakeSlack, method: str) -> None:
    s = story()
    await run(thread, s.opened)
    fake_slack.server_error(method)
    with pytest.raises(Transient):
        await thread.on_event(s.diagnosis)  # its reply (a post) or the root's update
    await run(thread, s.diagnosis)
    [root] = fake_slack.messages(CHANNEL, roots=True)
    assert "Diagnosis" in section_texts(root.blocks)
    assert [r.metadata["event_payload"]["kind"] for r in fake_slack.replies(CHANNEL, root.ts) if r.metadata] == [
        "diagnosis.ready"
    ]

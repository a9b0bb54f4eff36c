"""The notifier service on a real nats-server and Postgres with Slack on the fake Web API: the new durable
consumers keep one root message current whatever order the stages' events arrive in; without Slack they ack and
do nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nats.js import JetStreamContext
from pydantic import SecretStr

from pagerpatch.kernel import bus
from pagerpatch.settings import PolicySettings, SlackSettings
from schemas import subjects
from schemas.envelope import Event
from services.notifier.app import bootstrap, create_service
from tests.integration.test_runtime import make_settings, stream_events
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack
from tests.support.stages import running_stage
from tests.support.streams import wait_for
from tests.support.thread_story import APPROVER, story

pytestmark = pytest.mark.integration
CHANNEL = "C0PPINC01"


async def test_the_thread_follows_the_stages_through_the_bus(
    nats_url: str,
    fresh_db: str,
    js: JetStreamContext,
    tmp_path: Path,
    fake_slack: FakeSlack,
) -> None:
    settings = make_settings(nats_url, fresh_db, tmp_path).model_copy(update={
        "slack": SlackSettings(api_url=fake_slack.api_url, bot_token=SecretStr(TOKEN), channels={"payments": CHANNEL}),
        "policy": PolicySettings(slack_approvers=[APPROVER]),
    })  # fmt: skip
    s = story()
    events: list[Event[Any]] = [
        s.opened,
        s.diagnosis,
        s.validated,
        s.requested,
        s.decided,
        s.pr,
    ]  # fix.approved needs a repository
    async with running_stage(create_service(), bootstrap, settings, js) as svc:
        for event in reversed(events):  # the latest first: the root is made on first need, facts merge in any order
            await bus.publish(svc.broker, event)

        async def settled() -> bool:
            roots = fake_slack.messages(CHANNEL, roots=True)
            if len(roots) != 1:
                return False
            done = await svc.pool.fetchval("SELECT count(*) FROM checkpoints WHERE incident_id = $1 AND status = "
                                           "'done' AND stage LIKE 'notifier-%'", s.incident_id)  # fmt: skip
            return bool(done == len(events))

        await wait_for(settled, timeout=60)
        roots = fake_slack.messages(CHANNEL, roots=True)
        assert len(roots) == 1
        text = json.dumps(roots[0].blocks)
        for expected in ("Diagnosis", "proved", "HIGH", "Approved by jtorrance", "pull/7|", "pull request opened"):
            assert expected in text, expected
        replies = fake_slack.replies(CHANNEL, roots[0].ts)
        kinds = sorted((r.metadata or {})["event_payload"]["kind"] for r in replies)
        assert kinds == ["approval", "diagnosis.ready", "fix.validated", "pr.opened"]
        approval = next(r for r in replies if (r.metadata or {})["event_payload"]["kind"] == "approval")
        assert not any(b["type"] == "actions" for b in approval.blocks)  # decided: no buttons left
        sent = [json.loads(m) for m in await stream_events(js, subjects.NOTIFICATION_SENT)]
        slack_sent = [m for m in sent if m["payload"]["channel"] == "slack"]
        assert len(slack_sent) == len(events) and {m["payload"]["kind"] for m in slack_sent} == {"slack.thread"}
        assert len(fake_slack.called("chat.postMessage")) == 5  # root, three replies, the approval message


async def test_without_slack_the_new_consumers_ack_and_do_nothing(
    nats_url: str,
    fresh_db: str,
    js: JetStreamContext,
    tmp_path: Path,
    fake_slack: FakeSlack,
) -> None:
    settings = make_settings(nats_url, fresh_db, tmp_path)
    s = story()
    async with running_stage(create_service(), bootstrap, settings, js) as svc:
        for event in (s.opened, s.diagnosis, s.decided):
            await bus.publish(svc.broker, event)
        sql = "SELECT count(*) FROM checkpoints WHERE incident_id = $1 AND status = 'done'"

        async def all_done() -> Any:
            return await svc.pool.fetchval(sql, s.incident_id) == 3

        await wait_for(all_done)
        assert await svc.pool.fetchval("SELECT count(*) FROM notifier_threads") == 0
    assert fake_slack.calls == []
    assert [json.loads(m) for m in await stream_events(js, subjects.NOTIFICATION_SENT)] == []

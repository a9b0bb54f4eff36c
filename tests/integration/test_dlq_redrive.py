"""`pagerpatch dlq redrive` on a real nats-server and Postgres: a dead letter whose cause is fixed is handled once
more and finishes; its checkpoint ends 'done', the letter is marked redriven and a second redrive does nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from nats.js import JetStreamContext
from typer.testing import Result

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel import bus, store
from pagerpatch.kernel.errors import Poison
from pagerpatch.kernel.runtime import RunningService, Service, StageContext, start_service, stop_service
from pagerpatch.settings import BusSettings, Settings
from schemas import streams, subjects
from schemas.envelope import Event
from schemas.events import AlertReceived, AlertReceivedPayload
from schemas.streams import ConsumerDef
from tests.support.cli import run_cli
from tests.support.streams import wait_for

pytestmark = pytest.mark.integration

CONSUMER = ConsumerDef(
    durable="redrive-test", service="redrive-test", subject=subjects.ALERT_RECEIVED, ack_wait_s=3.0, max_deliver=3
)


class Flaky:
    """The test service's deps: whether the handler still refuses its input, and each time it ran."""

    def __init__(self) -> None:
        self.poisoned = True
        self.runs: list[float] = []


async def invoke(nats_url: str, db: str, home: Path, *args: str) -> Result:
    return await run_cli("dlq", *args, home=home, database_url=db, nats_url=nats_url)


async def running(nats_url: str, db: str, js: JetStreamContext, home: Path) -> RunningService:
    settings = Settings(nats_url=nats_url, database_url=db, home=home, bus=BusSettings(retry_base_s=0.3, retry_cap_s=1))
    await bus.setup(js, settings.bus, consumer_defs=[CONSUMER])
    await store.migrate(db)
    service: Service[Flaky] = Service("redrive-test")

    @service.handler(CONSUMER, AlertReceived)
    async def handle(event: AlertReceived, ctx: StageContext[Flaky]) -> Sequence[Event[Any]]:
        ctx.deps.runs.append(time.monotonic())
        if ctx.deps.poisoned:
            raise Poison("checkout is not a known service")
        return []

    return await start_service(service, settings, lambda _settings, _pool: Flaky(), finish=finish_handoff)


async def test_redrive_handles_a_fixed_dead_letter_once(nats_url, fresh_db, js, tmp_path) -> None:
    svc = await running(nats_url, fresh_db, js, tmp_path)
    deps: Flaky = svc.runners[0].deps
    try:
        event = AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title="t"), source="t")
        await bus.publish(svc.broker, event)
        letter = await wait_for(lambda: svc.pool.fetchrow("SELECT id, kind FROM dead_letters"))
        assert letter["kind"] == "poison" and len(deps.runs) == 1
        checkpoint = "SELECT status, attempts, last_error FROM checkpoints WHERE event_id = $1 AND stage = $2"
        assert (await svc.pool.fetchrow(checkpoint, event.event_id, CONSUMER.durable))["status"] == "dead"

        shown = await invoke(nats_url, fresh_db, tmp_path, "show", str(letter["id"]))
        assert shown.exit_code == 0, shown.output
        assert "checkout is not a known service" in shown.output and "payload:" in shown.output
        assert '"service": "checkout"' in shown.output  # the stored message, pretty-printed
        as_json = json.loads((await invoke(nats_url, fresh_db, tmp_path, "show", str(letter["id"]), "--json")).output)
        assert as_json["kind"] == "poison" and as_json["event_id"] == str(event.event_id)
        assert as_json["payload"]["payload"]["title"] == "t" and as_json["redriven_at"] is None

        nothing = await invoke(nats_url, fresh_db, tmp_path, "redrive")
        assert nothing.exit_code == 2 and "nothing selected" in nothing.output

        dry = await invoke(nats_url, fresh_db, tmp_path, "redrive", "--all", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert f"#{letter['id']}  would redrive redrive-test: event {event.event_id}" in dry.output
        await asyncio.sleep(0.5)
        assert len(deps.runs) == 1
        assert await svc.pool.fetchval("SELECT redriven_at FROM dead_letters") is None

        deps.poisoned = False  # the operator fixed the cause
        first = await invoke(nats_url, fresh_db, tmp_path, "redrive", str(letter["id"]))
        assert first.exit_code == 0, first.output
        assert f"#{letter['id']}  redriven redrive-test: event {event.event_id}" in first.output

        async def done() -> bool:
            row = await svc.pool.fetchrow(checkpoint, event.event_id, CONSUMER.durable)
            return bool(row["status"] == "done")

        await wait_for(done)
        row = await svc.pool.fetchrow(checkpoint, event.event_id, CONSUMER.durable)
        assert row["attempts"] == 1
        assert len(deps.runs) == 2
        assert await svc.pool.fetchval("SELECT redriven_at FROM dead_letters WHERE id = $1", letter["id"]) is not None
        assert await svc.pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'dlq.redrive'") == 1

        again = await invoke(nats_url, fresh_db, tmp_path, "redrive", str(letter["id"]))
        assert again.exit_code == 0, again.output
        assert "skipped: already redriven" in again.output
        pending = await invoke(nats_url, fresh_db, tmp_path, "redrive", "--all")
        assert pending.exit_code == 0 and "no dead letters to redrive" in pending.output
        await asyncio.sleep(1.0)
        assert len(deps.runs) == 2
        info = await js.stream_info(streams.EVENTS_STREAM, subjects_filter=subjects.ALERT_RECEIVED)
        assert info.state.subjects == {subjects.ALERT_RECEIVED: 2}  # the event and its one redrive, nothing more

        listed = await invoke(nats_url, fresh_db, tmp_path, "list")
        assert listed.exit_code == 0 and "redriven" in listed.output
    finally:
        await stop_service(svc)


async def test_redrive_refuses_a_body_that_is_not_an_event(nats_url, fresh_db, js, tmp_path) -> None:
    svc = await running(nats_url, fresh_db, js, tmp_path)
    try:
        await js.publish(subjects.ALERT_RECEIVED, b'{"type": "alert.received"}', stream=streams.EVENTS_STREAM)
        letter = await wait_for(lambda: svc.pool.fetchval("SELECT id FROM dead_letters"))
        refused = await invoke(nats_url, fresh_db, tmp_path, "redrive", "--all")
        assert refused.exit_code == 1
        assert f"#{letter}  skipped: poison: the stored body is not a valid event (no event id)" in refused.output
        shown = await invoke(nats_url, fresh_db, tmp_path, "show", str(letter))
        assert shown.exit_code == 0 and '"type": "alert.received"' in shown.output
        assert (await invoke(nats_url, fresh_db, tmp_path, "show", "999")).exit_code == 1
        unknown = await invoke(nats_url, fresh_db, tmp_path, "redrive", "999")
        assert unknown.exit_code == 1 and "#999  skipped: no such dead letter" in unknown.output
        assert await svc.pool.fetchval("SELECT redriven_at FROM dead_letters") is None
    finally:
        await stop_service(svc)

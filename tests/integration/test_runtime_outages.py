"""The kernel's handoff through outages: Postgres or NATS stopped while messages flow loses and dead-letters nothing."""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel import bus, store
from pagerpatch.kernel.runtime import RunningService, Service, StageContext, start_service, stop_service
from pagerpatch.ops.embedded import EmbeddedNats, EmbeddedPostgres
from pagerpatch.settings import BusSettings, Settings
from schemas import streams, subjects
from schemas.envelope import Event
from schemas.events import AlertReceived, AlertReceivedPayload, AlertSuppressed, AlertSuppressedPayload
from schemas.streams import ConsumerDef
from tests.support.streams import delete_streams

pytestmark = pytest.mark.integration

# ack_wait and max_deliver small enough that a few seconds' outage would use them up if it counted.
OUTAGE_CONSUMER = ConsumerDef(
    durable="outage-test", service="outage-test", subject=subjects.ALERT_RECEIVED, ack_wait_s=2.0, max_deliver=3
)






class Seen:
    """Handler calls per event id."""

    def __init__(self) -> None:
        self.calls: collections.Counter[uuid.UUID] = collections.Counter()


async def suppress(event: AlertReceived, ctx: StageContext[Seen]) -> Sequence[Event[Any]]:
    ctx.deps.calls[event.event_id] += 1
    await asyncio.sleep(0.05)  # some work in flight when the outage starts
    return [event.derive(AlertSuppressed, AlertSuppressedPayload(fingerprint="fp", reason="noise"), stage="t")]


async def start(nats_url: str, db: str, tmp_path: Path) -> RunningService:
    settings = Settings(
        nats_url=nats_url, database_url=db, home=tmp_path, bus=BusSettings(retry_base_s=0.3, retry_cap_s=1.0)
    )
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await delete_streams(js)
        await bus.setup(js, settings.bus, consumer_defs=[OUTAGE_CONSUMER])
    finally:
        await nc.drain()
    await store.migrate(db)
    service: Service[Seen] = Service("outage-test")
    service.handler(OUTAGE_CONSUMER, AlertReceived)(suppress)
    return await start_service(service, settings, lambda _s, _p: Seen(), finish=finish_handoff)


def alert(i: int) -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title=f"a{i}"), source="t")


async def outputs_on_stream(nats_url: str) -> collections.Counter[uuid.UUID]:
    """How many `alert.suppressed` messages the stream holds per causing event id."""
    nc = await nats.connect(nats_url)
    out: collections.Counter[uuid.UUID] = collections.Counter()
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subjects.ALERT_SUPPRESSED, stream=streams.EVENTS_STREAM, ordered_consumer=True)
        try:
            while True:
                msg = await sub.next_msg(timeout=0.5)
                out[uuid.UUID(json.loads(msg.data)["causation_id"])] += 1
        except nats.errors.TimeoutError:
            pass
    finally:
        await nc.drain()
    return out


async def until(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await cond():
                return
        except (OSError, asyncpg.PostgresError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def publish_all(svc: RunningService, events: Sequence[AlertReceived]) -> None:
    for e in events:
        await bus.publish(svc.broker, e)


async def assert_each_handled_once(
    svc: RunningService, nats_url: str, events: Sequence[AlertReceived], *, handler_once: bool = True
) -> None:
    """Every event finished, nothing dead-lettered, one output per event on the stream.

    `handler_once=False` when NATS itself was down: a delivery's heartbeat cannot reach the server then, so a
    message in flight may be delivered again and handled twice; the checkpoint still keeps one answer.
    """
    ids = [e.event_id for e in events]
    done_sql = "SELECT count(*) FROM checkpoints WHERE status = 'done' AND event_id = ANY($1)"
    await until(lambda: _eq(svc.pool.fetchval(done_sql, ids), len(ids)), timeout=60)
    assert await svc.pool.fetchval("SELECT count(*) FROM dead_letters") == 0
    seen: Seen = svc.runners[0].deps
    assert all(seen.calls[i] == 1 if handler_once else seen.calls[i] >= 1 for i in ids), seen.calls
    on_stream = await outputs_on_stream(nats_url)
    assert {i: on_stream[i] for i in ids} == dict.fromkeys(ids, 1)


async def _eq(value: Any, want: Any) -> bool:
    return bool(await value == want)


async def test_postgres_outage_dead_letters_nothing_and_every_message_finishes_once(
    nats_url: str, private_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    svc = await start(nats_url, private_pg.url, tmp_path)
    try:
        before = [alert(i) for i in range(15)]
        during = [alert(100 + i) for i in range(15)]
        await publish_all(svc, before)
        await asyncio.to_thread(private_pg.stop)
        await publish_all(svc, during)
        await asyncio.sleep(5.0)  # longer than ack_wait x max_deliver: an outage that counted would exhaust them
        await asyncio.to_thread(private_pg.restart)
        await assert_each_handled_once(svc, nats_url, [*before, *during])
        info = await svc.broker.config.connection_state.stream.consumer_info(streams.EVENTS_STREAM, "outage-test")
        assert info.num_ack_pending == 0
    finally:
        await stop_service(svc)


async def test_nats_outage_loses_nothing_and_republishes_nothing_twice(
    private_nats: EmbeddedNats, fresh_db: str, tmp_path: Path
) -> None:
    svc = await start(private_nats.url, fresh_db, tmp_path)
    try:
        events = [alert(i) for i in range(20)]
        await publish_all(svc, events)
        await asyncio.to_thread(private_nats.stop)
        await asyncio.sleep(4.0)
        await asyncio.to_thread(private_nats.restart)
        await assert_each_handled_once(svc, private_nats.url, events, handler_once=False)
    finally:
        await stop_service(svc)

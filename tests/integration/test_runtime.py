"""The kernel's handoff on a real nats-server and Postgres: checkpoints, dead letters, waits, set-up."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext

from pagerpatch import incidents
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel import bus, store
from pagerpatch.kernel.checkpoints import Checkpoints
from pagerpatch.kernel.errors import Poison, Transient
from pagerpatch.kernel.runtime import RunningService, Service, StageContext, start_service, stop_service
from pagerpatch.settings import BusSettings, Settings
from schemas import streams, subjects
from schemas.codec import encode
from schemas.envelope import Event
from schemas.events import (
    AlertReceived,
    AlertReceivedPayload,
    AlertSuppressed,
    AlertSuppressedPayload,
    IncidentOpened,
    IncidentOpenedPayload,
)
from schemas.streams import ConsumerDef
from tests.support.streams import wait_for

pytestmark = pytest.mark.integration

TEST_CONSUMER = ConsumerDef(
    durable="kernel-test", service="kernel-test", subject=subjects.ALERT_RECEIVED, ack_wait_s=3.0, max_deliver=3
)


def make_settings(nats_url: str, db: str, tmp_path: Any) -> Settings:
    return Settings(
        nats_url=nats_url,
        database_url=db,
        home=tmp_path,
        bus=BusSettings(retry_base_s=0.3, retry_cap_s=1.0),
    )


def alert(title: str = "checkout failed") -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title=title), source="test")


async def stream_events(js: JetStreamContext, subject: str) -> list[bytes]:
    """Every message on `subject` currently in the stream."""
    sub = await js.subscribe(subject, stream=streams.EVENTS_STREAM, ordered_consumer=True)
    out = []
    try:
        while True:
            msg = await sub.next_msg(timeout=0.5)
            out.append(msg.data)
    except nats.errors.TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return out


async def wait_done(svc: RunningService, event: Event[Any]) -> None:
    """Until the kernel has checkpointed `event` as handled."""
    sql = "SELECT status = 'done' FROM checkpoints WHERE event_id = $1"
    await wait_for(lambda: svc.pool.fetchval(sql, event.event_id))


class Calls:
    def __init__(self) -> None:
        self.times: list[float] = []


async def running(
    settings: Settings, js: JetStreamContext, handler: Any, consumer: ConsumerDef = TEST_CONSUMER
) -> RunningService:
    await bus.setup(js, settings.bus, consumer_defs=[consumer])
    await store.migrate(settings.database_url or "")
    service: Service[Calls] = Service("kernel-test")
    service.handler(consumer, AlertReceived)(handler)
    return await start_service(service, settings, lambda _settings, _pool: Calls(), finish=finish_handoff)


async def test_malformed_event_is_dead_lettered_once_and_not_retried(nats_url, fresh_db, js, tmp_path) -> None:
    settings = make_settings(nats_url, fresh_db, tmp_path)

    async def handler(event: AlertReceived, ctx: StageContext[Calls]) -> Sequence[Event[Any]]:
        ctx.deps.times.append(time.monotonic())
        return []

    svc = await running(settings, js, handler)
    try:
        bad = b'{"type": "alert.received", "source": "x", "payload": {"service": "checkout"}}'
        await js.publish(subjects.ALERT_RECEIVED, bad, stream=streams.EVENTS_STREAM)
        row = await wait_for(lambda: svc.pool.fetchrow("SELECT * FROM dead_letters"))
        assert row["kind"] == "poison"
        assert row["consumer"] == "kernel-test"
        assert row["stream_seq"] == 1
        assert "payload.title: Field required" in row["reason"]
        await asyncio.sleep(1.5)
        info = await js.consumer_info(streams.EVENTS_STREAM, "kernel-test")
        assert info.num_ack_pending == 0 and info.num_redelivered == 0
        assert svc.runners[0].deps.times == []
        assert await svc.pool.fetchval("SELECT count(*) FROM dead_letters") == 1
    finally:
        await stop_service(svc)


async def test_handler_that_keeps_failing_is_dead_lettered_after_max_deliver(nats_url, fresh_db, js, tmp_path):
    settings = make_settings(nats_url, fresh_db, tmp_path)

    async def handler(event: AlertReceived, ctx: StageContext[Calls]) -> Sequence[Event[Any]]:
        ctx.deps.times.append(time.monotonic())
        raise RuntimeError("database of record exploded")

    svc = await running(settings, js, handler)
    try:
        event = alert()
        await bus.publish(svc.broker, event)
        row = await wait_for(lambda: svc.pool.fetchrow("SELECT * FROM dead_letters"), timeout=30)
        assert row["kind"] == "max_deliveries"
        assert row["event_id"] == event.event_id
        assert row["deliveries"] == 3
        assert "database of record exploded" in row["reason"]
        times = svc.runners[0].deps.times
        assert len(times) == 3
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= 0.25 for g in gaps), gaps  # naks carry a delay: no hot loop
        status = await svc.pool.fetchval("SELECT status FROM checkpoints WHERE event_id = $1", event.event_id)
        assert status == "dead"
    finally:
        await stop_service(svc)


async def test_redelivered_done_event_republishes_stored_output_without_redoing_work(
    nats_url, fresh_db, js, tmp_path
) -> None:
    settings = make_settings(nats_url, fresh_db, tmp_path)

    async def handler(event: AlertReceived, ctx: StageContext[Calls]) -> Sequence[Event[Any]]:
        ctx.deps.times.append(time.monotonic())
        out = AlertSuppressedPayload(fingerprint="fp", reason="noise")
        return [event.derive(AlertSuppressed, out, stage="kernel-test")]

    svc = await running(settings, js, handler)
    try:
        event = alert()
        await bus.publish(svc.broker, event)
        await wait_done(svc, event)
        # The same event arrives again (a provider retry past the duplicate window, or a lost ack).
        await js.publish(subjects.ALERT_RECEIVED, encode(event), stream=streams.EVENTS_STREAM,
                         headers={"Nats-Msg-Id": "another-delivery"})  # fmt: skip

        async def acked_both() -> bool:
            info = await js.consumer_info(streams.EVENTS_STREAM, "kernel-test")
            return info.ack_floor.stream_seq >= 3 and info.num_ack_pending == 0

        await wait_for(acked_both)
        assert len(svc.runners[0].deps.times) == 1
        outputs = await stream_events(js, subjects.ALERT_SUPPRESSED)
        assert len(outputs) == 1
        assert uuid.UUID(__import__("json").loads(outputs[0])["causation_id"]) == event.event_id
    finally:
        await stop_service(svc)


async def test_two_deliveries_of_one_event_in_one_batch_run_one_after_the_other(nats_url, fresh_db, js, tmp_path):
    """One fetched batch can hold two deliveries of one event (a copy published again past the duplicate window,
    or a delivery from an expired pull request next to its redelivery): they must not run side by side (they
    would share per-incident state, such as a worktree path); the second finds the work done."""
    settings = make_settings(nats_url, fresh_db, tmp_path)
    active: list[int] = [0, 0]  # now, most at once

    async def handler(event: AlertReceived, ctx: StageContext[Calls]) -> Sequence[Event[Any]]:
        ctx.deps.times.append(time.monotonic())
        active[0] += 1
        active[1] = max(active)
        try:
            await asyncio.sleep(0.5)
        finally:
            active[0] -= 1
        return [event.derive(AlertSuppressed, AlertSuppressedPayload(fingerprint="fp", reason="noise"),
                             stage="kernel-test")]  # fmt: skip

    event = alert()
    await bus.setup(js, settings.bus, consumer_defs=[TEST_CONSUMER])
    for copy in ("first-copy", "second-copy"):  # both wait in the stream: the service fetches them together
        await js.publish(subjects.ALERT_RECEIVED, encode(event), stream=streams.EVENTS_STREAM,
                         headers={"Nats-Msg-Id": copy})  # fmt: skip
    svc = await running(settings, js, handler)
    try:

        async def both_acked() -> bool:
            info = await js.consumer_info(streams.EVENTS_STREAM, "kernel-test")
            return info.ack_floor.stream_seq >= 2 and info.num_ack_pending == 0

        await wait_for(both_acked)
        assert len(svc.runners[0].deps.times) == 1  # the second copy found the work done
        assert active[1] == 1
        assert len(await stream_events(js, subjects.ALERT_SUPPRESSED)) == 1
        assert svc.runners[0]._inflight == {}
    finally:
        await stop_service(svc)


async def test_transient_failure_waits_in_place_and_does_not_burn_deliveries(nats_url, fresh_db, js, tmp_path):
    settings = make_settings(nats_url, fresh_db, tmp_path)

    async def handler(event: AlertReceived, ctx: StageContext[Calls]) -> Sequence[Event[Any]]:
        ctx.deps.times.append(time.monotonic())
        if len(ctx.deps.times) < 5:  # more failures than max_deliver allows deliveries
            raise Transient("github is down", retry_after_s=0.2)
        return [event.derive(AlertSuppressed, AlertSuppressedPayload(fingerprint="f", reason="noise"), stage="t")]

    svc = await running(settings, js, handler)
    try:
        event = alert()
        await bus.publish(svc.broker, event)
        await wait_done(svc, event)
        assert len(svc.runners[0].deps.times) == 5
        assert await svc.pool.fetchval("SELECT count(*) FROM dead_letters") == 0
        info = await js.consumer_info(streams.EVENTS_STREAM, "kernel-test")
        assert info.num_redelivered == 0
        assert len(await stream_events(js, subjects.ALERT_SUPPRESSED)) == 1
    finally:
        await stop_service(svc)


async def test_poison_raised_by_handler_is_dead_lettered(nats_url, fresh_db, js, tmp_path) -> None:
    settings = make_settings(nats_url, fresh_db, tmp_path)

    async def handler(event: AlertReceived, ctx: StageContext[Calls]) -> Sequence[Event[Any]]:
        ctx.deps.times.append(time.monotonic())
        raise Poison("service 'checkout' has no owner")

    svc = await running(settings, js, handler)
    try:
        await bus.publish(svc.broker, alert())
        row = await wait_for(lambda: svc.pool.fetchrow("SELECT * FROM dead_letters"))
        assert row["kind"] == "poison" and row["reason"] == "service 'checkout' has no owner"
        await asyncio.sleep(1.0)
        assert len(svc.runners[0].deps.times) == 1
    finally:
        await stop_service(svc)


async def test_setup_creates_then_updates_consumer_config_on_the_server(js) -> None:
    settings = BusSettings()
    first = ConsumerDef(durable="kernel-setup", service="x", subject=subjects.ALERT_RECEIVED, ack_wait_s=5.0)
    report = await bus.setup(js, settings, consumer_defs=[first])
    assert report.streams[streams.EVENTS_STREAM] == "created"
    assert report.consumers["kernel-setup"] == "created"
    info = await js.consumer_info(streams.EVENTS_STREAM, "kernel-setup")
    assert info.config.ack_wait == 5.0 and info.config.max_deliver == 5

    changed = first.model_copy(update={"ack_wait_s": 9.0, "max_deliver": 7})
    report = await bus.setup(js, settings, consumer_defs=[changed])
    assert report.consumers["kernel-setup"] == "updated"
    info = await js.consumer_info(streams.EVENTS_STREAM, "kernel-setup")
    assert info.config.ack_wait == 9.0 and info.config.max_deliver == 7

    stream = await js.stream_info(streams.EVENTS_STREAM)
    assert stream.config.duplicate_window == 120.0


async def test_setup_applies_operator_overrides(js) -> None:
    from pagerpatch.settings import ConsumerOverride

    settings = BusSettings(consumers={"triage": ConsumerOverride(ack_wait_s=2.5)})
    await bus.setup(js, settings)
    info = await js.consumer_info(streams.EVENTS_STREAM, "triage")
    assert info.config.ack_wait == 2.5
    info = await js.consumer_info(streams.EVENTS_STREAM, "fixgen")
    assert info.config.ack_wait == streams.consumer("fixgen").ack_wait_s


async def test_migrations_apply_once_in_order(fresh_db) -> None:
    first = await store.migrate(fresh_db)
    assert first == [m.version for m in store.bundled_migrations()]
    assert await store.migrate(fresh_db) == []
    conn = await store.connect(fresh_db)
    try:
        assert await store.applied_migrations(conn) == first
        await store.audit(conn, actor="test", action="x")
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("UPDATE audit_log SET actor = 'mallory'")
    finally:
        await conn.close()


async def test_finish_handoff_stores_outputs_and_timeline_once(pool) -> None:
    checkpoints = Checkpoints(pool, "kernel-test")
    event = alert()
    incident = uuid.uuid4()
    out = event.derive(AlertSuppressed, AlertSuppressedPayload(fingerprint="fp", reason="duplicate",
                       incident_id=incident), stage="kernel-test", incident_id=incident)  # fmt: skip
    assert not incidents.changes_state([event, out])
    await checkpoints.begin(event)
    stored = await finish_handoff(checkpoints, event, [out])
    assert [s.event_id for s in stored] == [out.event_id]

    # A second finish of the same work (a racing redelivery) neither rewrites the outputs nor adds a row.
    other = event.derive(AlertSuppressed, AlertSuppressedPayload(fingerprint="fp", reason="noise"), stage="x")
    await finish_handoff(checkpoints, event, [other])
    again = await checkpoints.begin(event)
    assert again.status == "done" and [o.event_id for o in again.outputs] == [out.event_id]
    rows = await pool.fetch("SELECT event_id, incident_id, type, summary FROM incident_events")
    assert [dict(r) for r in rows] == [
        {"event_id": out.event_id, "incident_id": incident, "type": "alert.suppressed", "summary": "duplicate"}
    ]


def test_only_state_moving_events_need_the_transaction() -> None:
    event = alert()
    incident = uuid.uuid4()
    opened = event.derive(IncidentOpened, IncidentOpenedPayload(fingerprint="fp", title="t", service="s",
                          severity="P2"), stage="triage", incident_id=incident)  # fmt: skip
    untracked = event.derive(IncidentOpened, opened.payload, stage="triage")  # no incident: nothing to move
    assert incidents.changes_state([event, opened])
    assert not incidents.changes_state([event, untracked])
    assert incidents.timeline_rows([event, untracked]).event_ids == []


async def test_deps_are_built_on_the_services_own_pool_before_consuming(nats_url, fresh_db, js, tmp_path) -> None:
    """`bootstrap(settings, pool)` runs once, after the pool exists (an async bootstrap is awaited)."""
    settings = make_settings(nats_url, fresh_db, tmp_path)
    await bus.setup(js, settings.bus, consumer_defs=[TEST_CONSUMER])
    await store.migrate(fresh_db)
    built: list[Any] = []

    async def bootstrap(got: Settings, pool: Any) -> Calls:
        assert got is settings
        assert await pool.fetchval("SELECT 1") == 1  # a live pool, before any message is handled
        built.append(pool)
        return Calls()

    async def handler(event: AlertReceived, ctx: StageContext[Calls]) -> Sequence[Event[Any]]:
        ctx.deps.times.append(time.monotonic())
        return []

    service: Service[Calls] = Service("kernel-test")
    service.handler(TEST_CONSUMER, AlertReceived)(handler)
    svc = await start_service(service, settings, bootstrap)
    try:
        assert built == [svc.pool]
        await bus.publish(svc.broker, alert())
        await wait_for(lambda: _async(bool(svc.runners[0].deps.times)))
        assert len(svc.runners[0].deps.times) == 1 and len(built) == 1
    finally:
        await stop_service(svc)


async def _async(value: Any) -> Any:
    return value

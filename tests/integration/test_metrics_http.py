"""Prometheus metrics on a real nats-server and Postgres, read back through the real /metrics text.

A service started with a metrics port serves prometheus_client's HTTP endpoint; these tests scrape it, parse the text
with prometheus_client's own parser and check that handoffs, dead letters, consumer lag and webhook answers move the
series they should (deltas: the registry is per process, and other tests in it count too).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel import bus, store
from pagerpatch.kernel.errors import Poison
from pagerpatch.kernel.runtime import RunningService, Service, StageContext, start_service, stop_service
from pagerpatch.settings import BusSettings, Settings
from pagerpatch.settings.metrics import MetricsSettings
from schemas import streams, subjects
from schemas.envelope import Event
from schemas.events import AlertReceived, AlertReceivedPayload
from schemas.streams import ConsumerDef
from tests.integration.test_ingest_http import make_client
from tests.support.streams import wait_for

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a /metrics page: (series name, labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return parse(resp.text)


def settings_for(nats_url: str, db: str, tmp_path: Any, **metrics: Any) -> Settings:
    return Settings(
        nats_url=nats_url,
        database_url=db,
        home=tmp_path,
        bus=BusSettings(retry_base_s=0.2, retry_cap_s=0.5, fetch_batch=1),
        metrics=MetricsSettings(port=0, **metrics),
    )


async def started(settings: Settings, js: JetStreamContext, consumer: ConsumerDef, handler: Any) -> RunningService:
    await bus.setup(js, settings.bus, consumer_defs=[consumer])
    await store.migrate(settings.database_url or "")
    service: Service[None] = Service(consumer.service)
    service.handler(consumer, AlertReceived)(handler)
    return await start_service(service, settings, lambda _s, _p: None, finish=finish_handoff)


def alert(title: str) -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title=title), source="test")


async def test_handled_failed_and_dead_lettered_handoffs_move_their_counters(nats_url, fresh_db, js, tmp_path):
    durable = f"metrics-{uuid.uuid4().hex[:8]}"
    consumer = ConsumerDef(durable=durable, service="metrics-test", subject=subjects.ALERT_RECEIVED, max_deliver=2)

    async def handler(event: AlertReceived, ctx: StageContext[None]) -> Sequence[Event[Any]]:
        if event.payload.title == "poison":
            raise Poison("no owner for this alert")
        if event.payload.title == "boom":
            raise RuntimeError("the handler keeps failing")
        return []

    svc = await started(settings_for(nats_url, fresh_db, tmp_path), js, consumer, handler)
    try:
        assert svc.metrics is not None and svc.metrics.port > 0
        before = await scrape(svc.metrics.url)
        for title in ("fine", "poison", "boom"):
            await bus.publish(svc.broker, alert(title))
        await wait_for(lambda: svc.pool.fetchval("SELECT count(*) = 2 FROM dead_letters"), timeout=30)
        await wait_for(lambda: svc.pool.fetchval("SELECT count(*) = 1 FROM checkpoints WHERE status = 'done'"))
        after = await scrape(svc.metrics.url)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        ours = {"service": "metrics-test", "consumer": durable}
        assert delta("pagerpatch_handoffs_total", outcome="handled", **ours) == 1
        assert delta("pagerpatch_handoffs_total", outcome="poison", **ours) == 1
        assert delta("pagerpatch_handoffs_total", outcome="failed", **ours) == 2  # both deliveries of "boom"
        assert delta("pagerpatch_dead_letters_total", consumer=durable, kind="poison") == 1
        assert delta("pagerpatch_dead_letters_total", consumer=durable, kind="max_deliveries") == 1
        assert delta("pagerpatch_handling_seconds_count", **ours) == 4
        assert delta("pagerpatch_handling_seconds_bucket", le="+Inf", **ours) == 4
        assert value(after, "pagerpatch_handling_seconds_sum", **ours) > 0
    finally:
        await stop_service(svc)
    with pytest.raises(httpx.ConnectError):  # stopping the service stops its endpoint
        await scrape(svc.metrics.url)


async def test_consumer_lag_gauge_follows_pending_messages_on_jetstream(nats_url, fresh_db, js, tmp_path):
    durable = f"lag-{uuid.uuid4().hex[:8]}"
    # One message in flight at a time: the rest wait on the stream as the consumer's lag.
    consumer = ConsumerDef(durable=durable, service="lag-test", subject=subjects.ALERT_RECEIVED, max_ack_pending=1)
    gate = asyncio.Event()

    async def handler(event: AlertReceived, ctx: StageContext[None]) -> Sequence[Event[Any]]:
        await gate.wait()
        return []

    svc = await started(settings_for(nats_url, fresh_db, tmp_path, lag_cache_s=0.0), js, consumer, handler)
    try:
        assert svc.metrics is not None
        for i in range(6):
            await bus.publish(svc.broker, alert(f"alert {i}"))
        labels = {"stream": streams.EVENTS_STREAM, "consumer": durable}

        async def lag_is(pending: float, ack_pending: float) -> bool:
            got = await scrape(svc.metrics.url)  # type: ignore[union-attr]
            return (
                value(got, "pagerpatch_consumer_pending", **labels) == pending
                and value(got, "pagerpatch_consumer_ack_pending", **labels) == ack_pending
                and value(got, "pagerpatch_consumer_lag_up", **labels) == 1
            )

        await wait_for(lambda: lag_is(5, 1))
        info = await js.consumer_info(streams.EVENTS_STREAM, durable)
        assert info.num_pending == 5  # the gauge says what the server says
        gate.set()
        await wait_for(lambda: lag_is(0, 0))
    finally:
        gate.set()
        await stop_service(svc)


async def test_ingest_counts_webhook_answers_by_provider_and_status(nats_url, fresh_db, tmp_path) -> None:
    client, running = await make_client(nats_url, fresh_db, tmp_path)
    try:
        before = parse((await client.get("/metrics")).text)
        ok = {"title": "KeyError in checkout", "service": "checkout"}
        assert (await client.post("/webhooks/generic", json=ok)).status_code == 202
        assert (await client.post("/webhooks/generic", json=ok)).status_code == 202
        assert (await client.post("/webhooks/generic", json={"service": "x"})).status_code == 400
        assert (await client.post("/webhooks/github", json=ok)).status_code == 401  # no secret configured
        assert (await client.post("/webhooks/no-such-thing", json=ok)).status_code == 404
        resp = await client.get("/metrics")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        after = parse(resp.text)

        def delta(provider: str, status: str) -> float:
            name = "pagerpatch_webhook_answers_total"
            return value(after, name, provider=provider, status=status) - value(
                before, name, provider=provider, status=status
            )

        assert delta("generic", "202") == 2
        assert delta("generic", "400") == 1
        assert delta("github", "401") == 1
        assert delta("unknown", "404") == 1  # an unknown path never becomes a label of its own
        assert not any(dict(labels).get("provider") == "no-such-thing" for _, labels in after)
        count = "pagerpatch_webhook_seconds_count"
        assert value(after, count, provider="generic") - value(before, count, provider="generic") == 3
    finally:
        await client.aclose()
        await running.broker.stop()
        await running.pool.close()

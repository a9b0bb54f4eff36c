"""Ingest's generic webhook on a real bus and database: durable 202s, clear refusals, 503 for our outages."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from faststream.nats import NatsBroker

from pagerpatch.kernel import bus, store
from pagerpatch.ops.embedded import EmbeddedNats
from pagerpatch.settings import BusSettings, IngestSettings, Settings
from schemas import streams
from services.ingest.adapters import HttpSns
from services.ingest.app import bootstrap, create_app
from services.ingest.usecase import IngestDeps
from tests.support.ingest import stored

pytestmark = pytest.mark.integration

ALERT = {
    "title": "KeyError in checkout",
    "service": "checkout",
    "severity": "critical",
    "stack_trace": 'Traceback (most recent call last):\n  File "/srv/app/a.py", line 3, in f\nKeyError: 1\n',
    "labels": {"env": "production"},
    "something_new": {"from": "a newer sender"},
}


@dataclass
class Running:
    deps: IngestDeps
    broker: NatsBroker
    pool: asyncpg.Pool


async def make_client(nats_url: str, db: str, tmp_path: Any, **overrides: Any) -> tuple[httpx.AsyncClient, Running]:
    # The generic endpoint opened without a secret, as the local `pagerpatch up` does.
    overrides.setdefault("ingest", IngestSettings(open_providers=["generic"]))
    settings = Settings(nats_url=nats_url, database_url=db, home=tmp_path, **overrides)
    await store.migrate(db)
    nc = await nats.connect(nats_url)
    await bus.setup(nc.jetstream(), BusSettings())
    await nc.drain()
    app = create_app(settings)
    broker = bus.make_broker(nats_url, name="ingest-test")
    await broker.connect()
    pool = await store.create_pool(db)
    app.state.deps = bootstrap(settings, pool, broker=broker, sns=HttpSns())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest"), Running(
        app.state.deps, broker, pool
    )


@pytest.fixture
async def client(nats_url: str, fresh_db: str, tmp_path: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Running]]:
    c, deps = await make_client(nats_url, fresh_db, tmp_path, ingest_max_body_bytes=4096)
    yield c, deps
    await c.aclose()
    await deps.broker.stop()
    await deps.pool.close()


async def test_accepted_alert_is_in_the_stream_before_the_202(client, nats_url) -> None:
    c, _ = client
    resp = await c.post("/webhooks/generic", json=ALERT)
    assert resp.status_code == 202
    event_id = resp.json()["event_id"]
    [event] = await stored(nats_url, [event_id])
    assert event["type"] == "alert.received"
    p = event["payload"]
    assert p["source"] == "generic" and p["service"] == "checkout" and p["severity_hint"] == "critical"
    assert p["stack_trace"].startswith("Traceback") and p["labels"] == {"env": "production"}
    assert "a newer sender" in p["raw"]  # unknown fields are kept only in the size-limited raw copy


async def test_retried_delivery_is_published_once(client, nats_url) -> None:
    c, _ = client
    headers = {"x-pagerpatch-delivery": "grafana-123"}
    first = await c.post("/webhooks/generic", json=ALERT, headers=headers)
    second = await c.post("/webhooks/generic", json=ALERT, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["event_id"] == second.json()["event_id"]
    assert second.json()["duplicate"] is True
    assert len(await stored(nats_url, [first.json()["event_id"]])) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b"[1, 2]", {"content-type": "application/json"}, 400, "JSON object"),
        (json.dumps({"service": "x"}).encode(), {"content-type": "application/json"}, 400, "title: Field required"),
        (json.dumps({**ALERT, "status": "maybe"}).encode(), {"content-type": "application/json"}, 400, "status"),
        (json.dumps(ALERT).encode(), {"content-type": "text/plain"}, 415, "application/json"),
        (json.dumps({**ALERT, "description": "x" * 5000}).encode(), {"content-type": "application/json"}, 413, "limit"),
    ],
)
async def test_bad_requests_are_refused_with_a_reason_and_nothing_is_published(
    client, nats_url, body, headers, status, reason
) -> None:
    c, deps = client
    js = deps.broker.config.connection_state.stream
    before = (await js.stream_info(streams.EVENTS_STREAM)).state.messages
    resp = await c.post("/webhooks/generic", content=body, headers=headers)
    assert resp.status_code == status
    assert reason in resp.json()["error"]
    assert (await js.stream_info(streams.EVENTS_STREAM)).state.messages == before


async def test_health_and_readiness(client) -> None:
    c, _ = client
    assert (await c.get("/healthz")).status_code == 200
    ready = await c.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "bus": "ok", "database": "ok"}


async def test_bus_outage_answers_503_with_retry_after(fresh_db, tmp_path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    c, deps = await make_client(url, fresh_db, tmp_path / "home", bus=BusSettings(publish_timeout_s=1.0))
    try:
        server.stop()
        resp = await c.post("/webhooks/generic", json=ALERT)
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "5"
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["bus"].startswith("unavailable")
    finally:
        await c.aclose()
        with contextlib.suppress(Exception):  # the broker is mid-reconnect to a server that is gone
            await deps.broker.stop()
        await deps.pool.close()

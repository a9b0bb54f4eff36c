"""Ingest through a NATS outage: a publish answered as failed (503) never reaches the stream later."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from pagerpatch.kernel import bus
from pagerpatch.kernel.errors import Transient
from pagerpatch.ops.embedded import EmbeddedNats
from pagerpatch.settings import BusSettings
from schemas import streams
from schemas.events import AlertReceived, AlertReceivedPayload
from services.ingest.adapters import JetStreamPublisher

pytestmark = pytest.mark.integration




def alert(title: str) -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title=title), source="t")


async def stream_count(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(streams.EVENTS_STREAM)
        return int(info.state.messages)
    finally:
        await nc.drain()


async def publish_during_outage(server: EmbeddedNats, *, pending_size: int, forget: bool) -> tuple[float, int]:
    """Publish one event while NATS is down; return (seconds until it failed, messages on the stream after)."""
    nc = await nats.connect(server.url)
    await bus.setup(nc.jetstream(), BusSettings(), consumer_defs=[])
    await nc.drain()
    broker = bus.make_broker(server.url, name="ingest-test", pending_size=pending_size)
    await broker.connect()
    try:
        publisher = JetStreamPublisher(broker, timeout_s=1.0)
        assert await publisher.publish(alert("before")) is False
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(0.3)  # the client notices and starts reconnecting
        started = time.monotonic()
        event = alert("during")
        if forget:
            with pytest.raises(Transient):
                await publisher.publish(event)
        else:
            with pytest.raises(Exception):  # noqa: B017 (the raw client call, no adapter)
                await bus.publish(broker, event, timeout=1.0)
        failed_after = time.monotonic() - started
        await asyncio.to_thread(server.restart)
        await asyncio.sleep(2.5)  # reconnected: anything still buffered has been written by now
        return failed_after, await stream_count(server.url)
    finally:
        await broker.stop()


async def test_a_failed_publish_is_not_sent_after_nats_comes_back(private_nats: EmbeddedNats) -> None:
    # Even with a reconnect buffer (the default client), the adapter takes its failed publish back out.
    _, on_stream = await publish_during_outage(private_nats, pending_size=2 * 1024 * 1024, forget=True)
    assert on_stream == 1


async def test_without_taking_it_back_the_buffer_publishes_it_late(private_nats: EmbeddedNats) -> None:
    """The failure mode the adapter prevents (and proof the test above tests something)."""
    _, on_stream = await publish_during_outage(private_nats, pending_size=2 * 1024 * 1024, forget=False)
    assert on_stream == 2


async def test_ingest_broker_without_reconnect_buffer_fails_fast(private_nats: EmbeddedNats) -> None:
    failed_after, on_stream = await publish_during_outage(private_nats, pending_size=0, forget=True)
    assert failed_after < 0.5  # 503 at once, not after the publish timeout
    assert on_stream == 1

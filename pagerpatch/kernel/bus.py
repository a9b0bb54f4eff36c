"""The bus: FastStream NATS broker factory, publishing with PubAck, and the one explicit set-up step."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nats
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from opentelemetry import propagate
from opentelemetry.trace import TracerProvider

from pagerpatch.settings import BusSettings
from schemas import streams, subjects
from schemas.codec import encode
from schemas.envelope import Event
from schemas.streams import ConsumerDef, StreamDef

log = logging.getLogger(__name__)


def make_broker(
    url: str,
    *,
    name: str,
    tracer_provider: TracerProvider | None = None,
    **kwargs: Any,
) -> NatsBroker:
    """The FastStream NATS broker every service uses (OpenTelemetry middleware, reconnecting forever)."""
    middlewares = (NatsTelemetryMiddleware(tracer_provider=tracer_provider),)
    return NatsBroker(
        url,
        name=f"pagerpatch-{name}",
        middlewares=middlewares,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        **kwargs,
    )


async def publish(
    broker: NatsBroker, event: Event[Any], *, timeout: float = 5.0, headers: Mapping[str, str] | None = None
) -> bool:
    """Publish an event into the events stream and wait for the PubAck.

    `Nats-Msg-Id` is the event id, so a retried publish of the same event is dropped by the stream.
    Returns True when the stream already had it (a duplicate).
    """
    return await publish_raw(
        broker, event.subject, encode(event), str(event.event_id), timeout=timeout, headers=headers
    )


async def publish_raw(
    broker: NatsBroker,
    subject: str,
    data: bytes,
    msg_id: str,
    *,
    timeout: float = 5.0,
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Publish through the broker's own nats-py JetStream context and wait for the PubAck.

    FastStream's publish path (its telemetry middleware, context scopes) cost more CPU than the publish itself on
    the hot paths (ingest, every stage's outputs); the W3C trace context of the current span is injected here
    instead, which the consumers' FastStream telemetry middleware picks up, so one trace still spans the pipeline.
    """
    hdrs = {"Nats-Msg-Id": msg_id, "content-type": "application/json", **(headers or {})}
    propagate.inject(hdrs)
    js = broker.config.connection_state.stream
    ack = await js.publish(subject, data, timeout, streams.EVENTS_STREAM, hdrs)
    return bool(ack.duplicate)


def forget_unsent(broker: NatsBroker, msg_id: str) -> int:
    """Drop publishes of `msg_id` still waiting in the client's outgoing buffer; returns how many were dropped.

    nats-py keeps what it could not yet write (the server went away) and writes it after reconnecting. A publish
    whose caller was told it failed (ingest answered 503: "not on the stream") must not reach the stream later.
    This reads nats-py 2.x's private buffer (`_pending`); with a client that has none it drops nothing.
    """
    try:
        nc = broker.config.connection_state.connection
    except Exception:  # not connected (stopped broker): nothing buffered; never turn the caller's 503 into a 500
        return 0
    pending = getattr(nc, "_pending", None)
    if not isinstance(pending, list) or not pending:
        return 0
    marker = f"Nats-Msg-Id: {msg_id}\r\n".encode()
    kept = [cmd for cmd in pending if marker not in cmd]
    dropped = len(pending) - len(kept)
    if dropped:
        nc._pending = kept  # swapped whole: the flusher takes the list as one piece
        nc._pending_data_size = sum(len(cmd) for cmd in kept)
    return dropped


def effective_consumers(settings: BusSettings, defs: Iterable[ConsumerDef] = streams.CONSUMERS) -> list[ConsumerDef]:
    """Consumer definitions with the operator's overrides (`bus.consumers`, "*" for all) applied."""
    out = []
    for c in defs:
        updates: dict[str, Any] = {}
        for key in ("*", c.durable):
            ov = settings.consumers.get(key)
            if ov is None:
                continue
            updates.update({k: v for k, v in ov.model_dump().items() if v is not None})
        out.append(ConsumerDef.model_validate({**c.model_dump(), **updates}) if updates else c)
    return out


def stream_config(s: StreamDef, settings: BusSettings) -> StreamConfig:
    window = settings.duplicate_window_s if s.name == streams.EVENTS_STREAM else s.duplicate_window_s
    return StreamConfig(
        name=s.name,
        description=s.description or None,
        subjects=list(s.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=s.max_age_s,
        duplicate_window=min(window, s.max_age_s),
        num_replicas=settings.replicas,
    )


def consumer_config(c: ConsumerDef) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=c.durable,
        name=c.durable,
        description=f"{c.service} reads {c.subject}",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=c.ack_wait_s,
        max_deliver=c.max_deliver,
        backoff=list(c.backoff_s) or None,
        filter_subject=c.subject,
        max_ack_pending=c.max_ack_pending,
    )


def advisory_consumer_config(c: ConsumerDef) -> ConsumerConfig:
    """The recorder of `c`'s max-deliveries advisories (read by the service that owns `c`)."""
    name = c.durable + streams.ADVISORY_DURABLE_SUFFIX
    return ConsumerConfig(
        durable_name=name,
        name=name,
        description=f"dead-letter recorder for {c.durable}",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_deliver=-1,
        filter_subject=subjects.max_deliveries_advisory(c.stream, c.durable),
    )


@dataclass(frozen=True)
class SetupReport:
    streams: dict[str, str]
    consumers: dict[str, str]


async def _ensure_stream(js: JetStreamContext, cfg: StreamConfig) -> str:
    assert cfg.name is not None
    try:
        await js.stream_info(cfg.name)
    except NotFoundError:
        await js.add_stream(cfg)
        return "created"
    await js.update_stream(cfg)
    return "updated"


async def _ensure_consumer(js: JetStreamContext, stream: str, cfg: ConsumerConfig) -> str:
    assert cfg.durable_name is not None
    try:
        await js.consumer_info(stream, cfg.durable_name)
        existed = True
    except NotFoundError:
        existed = False
    # The server's consumer-create API creates or updates (ack_wait, max_deliver, backoff, ...) in place.
    await js.add_consumer(stream, config=cfg)
    return "updated" if existed else "created"


async def setup(
    js: JetStreamContext,
    settings: BusSettings,
    *,
    stream_defs: Iterable[StreamDef] = streams.STREAMS,
    consumer_defs: Iterable[ConsumerDef] = streams.CONSUMERS,
) -> SetupReport:
    """Create or update every stream and durable consumer to match the definitions."""
    report = SetupReport(streams={}, consumers={})
    for s in stream_defs:
        report.streams[s.name] = await _ensure_stream(js, stream_config(s, settings))
    for c in effective_consumers(settings, consumer_defs):
        report.consumers[c.durable] = await _ensure_consumer(js, c.stream, consumer_config(c))
        adv = advisory_consumer_config(c)
        assert adv.durable_name is not None
        report.consumers[adv.durable_name] = await _ensure_consumer(js, streams.ADVISORY_STREAM, adv)
    return report


async def setup_url(url: str, settings: BusSettings) -> SetupReport:
    nc = await nats.connect(url, connect_timeout=5)
    try:
        return await setup(nc.jetstream(), settings)
    finally:
        await nc.drain()


async def connect(url: str, name: str = "pagerpatch") -> NatsClient:
    return await nats.connect(url, name=name, connect_timeout=5, max_reconnect_attempts=-1)

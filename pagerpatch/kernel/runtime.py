"""The service runtime: a service's handlers bound to their durable consumers, started and stopped as a process.

Each message is processed by `handoff.StageRunner` (the delivery contract); this module connects, builds the
service's dependencies once the pool exists (`bootstrap`), subscribes every runner and its max-deliveries
advisory recorder, and stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
import uvloop
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage as NatsMessageParam
from nats.js.errors import NotFoundError

from pagerpatch.kernel import bus, failpoints, metrics, outage
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.handoff import (
    FinishHook,
    Handler,
    Registration,
    StageContext,
    StageRunner,
    finish_outputs,
    retry_delay,
)
from pagerpatch.kernel.store import create_pool
from pagerpatch.kernel.telemetry import setup_tracing
from pagerpatch.settings import Settings
from schemas import streams, subjects
from schemas.envelope import Event
from schemas.streams import ConsumerDef

__all__ = [
    "Bootstrap",
    "FinishHook",
    "RunningService",
    "Service",
    "StageContext",
    "finish_outputs",
    "retry_delay",
    "run_service",
    "service_main",
    "start_service",
    "stop_service",
]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event[Any])
D = TypeVar("D")
# Builds a service's dependencies once its pool exists (ports and adapters bound to the pool and settings).
Bootstrap = Callable[[Settings, asyncpg.Pool], D | Awaitable[D]]


@dataclass
class Service(Generic[D]):
    """One pipeline service: its handlers, one per consumer definition it owns."""

    name: str
    registrations: list[Registration] = field(default_factory=list)

    def handler(self, durable: str | ConsumerDef, event_cls: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        consumer = streams.consumer(durable) if isinstance(durable, str) else durable
        if consumer.service != self.name:
            raise ValueError(f"consumer {consumer.durable!r} belongs to {consumer.service!r}, not {self.name!r}")
        if not subject_matches(consumer.subject, subjects.for_type(event_cls.TYPE)):
            raise ValueError(
                f"consumer {consumer.durable!r} receives {consumer.subject!r}, not {event_cls.TYPE!r} events"
            )

        def register(fn: Handler[E]) -> Handler[E]:
            self.registrations.append(Registration(consumer, event_cls, fn))
            return fn

        return register


@dataclass
class RunningService:
    broker: NatsBroker
    pool: asyncpg.Pool
    runners: list[StageRunner]
    metrics: metrics.MetricsServer | None = None  # /metrics, when `metrics.port(s)` gives this service a port


async def wait_for_consumers(broker: NatsBroker, consumers: Sequence[ConsumerDef], timeout_s: float = 60.0) -> None:
    """Fail clearly when the bus set-up step has not created this service's consumers."""
    js = broker.config.connection_state.stream
    deadline = time.monotonic() + timeout_s
    for c in consumers:
        while True:
            try:
                await js.consumer_info(c.stream, c.durable)
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"consumer {c.stream}/{c.durable} does not exist: run `pagerpatch bus setup` first"
                    ) from None
                await asyncio.sleep(0.5)


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a trailing `>` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


async def start_service(
    service: Service[D],
    settings: Settings,
    bootstrap: Bootstrap[D],
    *,
    finish: FinishHook = finish_outputs,
    stopping: asyncio.Event | None = None,
) -> RunningService:
    """Connect, build the service's dependencies on the pool, bind the durable consumers and start consuming.

    A store that is down at start-up is waited for (until `stopping`), like an outage later on: a service started
    during one comes up when the store does instead of crash-looping through the supervisor's backoff.
    """
    if not settings.nats_url or not settings.database_url:
        raise RuntimeError("NATS_URL and DATABASE_URL must be set for a service process")
    database_url = settings.database_url
    provider = setup_tracing(service.name, settings.telemetry, settings.state_dir)
    failpoints.arm(settings.failpoints, settings.state_dir)
    broker = bus.make_broker(settings.nats_url, name=service.name, tracer_provider=provider, log_level=logging.DEBUG)
    pool = await outage.through(
        lambda: create_pool(database_url),
        what=f"{service.name}: connecting to the store",
        outage=lambda exc: outage.is_store_outage(exc, any_os_error=True),
        stopping=stopping or asyncio.Event(),
    )
    built = bootstrap(settings, pool)
    deps = await built if inspect.isawaitable(built) else built
    breakers = Breakers()
    defs = {r.consumer.durable: r.consumer for r in service.registrations}
    consumers = {c.durable: c for c in bus.effective_consumers(settings.bus, defs.values())}
    runners = []
    for reg in service.registrations:
        consumer = consumers[reg.consumer.durable]
        runner = StageRunner(
            reg,
            service=service.name,
            settings=settings,
            pool=pool,
            broker=broker,
            breakers=breakers,
            deps=deps,
            consumer=consumer,
            finish=finish,
        )
        runners.append(runner)
        _subscribe(broker, runner, settings)
    await broker.connect()
    await wait_for_consumers(broker, [r.consumer for r in runners])
    await broker.start()
    log.info("%s started: %s", service.name, ", ".join(r.consumer.durable for r in runners))
    js = broker.config.connection_state.stream
    lag = metrics.jetstream_reader(js, [(r.consumer.stream, r.consumer.durable) for r in runners])
    server = metrics.serve(settings.metrics, service.name, lag=lag)
    return RunningService(broker=broker, pool=pool, runners=runners, metrics=server)


def _subscribe(broker: NatsBroker, runner: StageRunner, settings: Settings) -> None:
    c = runner.consumer

    async def on_message(msg: NatsMessageParam) -> None:
        await runner.process(msg)

    async def on_advisory(msg: NatsMessageParam) -> None:
        await runner.record_advisory(msg)

    broker.subscriber(
        c.subject,
        stream=JStream(c.stream, declare=False),
        durable=c.durable,
        pull_sub=PullSub(batch_size=settings.bus.fetch_batch, timeout=5.0),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(on_message)
    broker.subscriber(
        subjects.max_deliveries_advisory(c.stream, c.durable),
        stream=JStream(streams.ADVISORY_STREAM, declare=False),
        durable=c.durable + streams.ADVISORY_DURABLE_SUFFIX,
        pull_sub=PullSub(batch_size=8, timeout=5.0),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(on_advisory)


async def stop_service(running: RunningService) -> None:
    if running.metrics is not None:
        running.metrics.close()
    for r in running.runners:
        r.stopping.set()
    await running.broker.stop()
    await running.pool.close()


def service_main(service: Service[D], bootstrap: Bootstrap[D], *, finish: FinishHook = finish_outputs) -> None:
    """A service process's `main()`: settings, logging, then run until stopped."""
    from pagerpatch.kernel.logs import setup_logging
    from pagerpatch.settings import get_settings

    settings = get_settings()
    setup_logging(service.name, settings.log_level)
    run_service(service, settings, bootstrap, finish=finish)


def run_service(
    service: Service[D], settings: Settings, bootstrap: Bootstrap[D], *, finish: FinishHook = finish_outputs
) -> None:
    """Process entry point: run until SIGTERM/SIGINT, then stop cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            running = await start_service(service, settings, bootstrap, finish=finish, stopping=stop)
        except outage.Stopped:
            log.info("%s stopped before it could start (its store never answered)", service.name)
            return
        try:
            await stop.wait()
        finally:
            await stop_service(running)

    uvloop.run(main())  # libuv's event loop: cheaper socket I/O for the many small Postgres and NATS round trips

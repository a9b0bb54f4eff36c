"""The service runtime: every handoff works the same way (DESIGN.md, "Every handoff works the same way").

validate -> checkpoint -> handle -> store outputs -> publish with Nats-Msg-Id -> ack.
Poison is dead-lettered and acked; Transient waits (in place, reporting progress) and retries;
any other failure is nak'd with a growing delay until `max_deliver`, whose advisory is recorded as a
dead letter by the recorder this runtime also runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import uvloop
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from faststream.nats.annotations import NatsMessage as NatsMessageParam
from nats.js.errors import NotFoundError
from opentelemetry import trace
from pydantic import ValidationError

from pagerpatch.kernel import bus, deadletter, failpoints
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.checkpoints import Checkpoints, StoredOutput
from pagerpatch.kernel.errors import Poison, Transient
from pagerpatch.kernel.store import create_pool
from pagerpatch.kernel.telemetry import setup_tracing
from pagerpatch.settings import Settings
from schemas import streams, subjects
from schemas.codec import decode
from schemas.envelope import Event
from schemas.streams import ConsumerDef

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event[Any])
D = TypeVar("D")
Handler = Callable[[E, "StageContext[Any]"], Awaitable[Sequence[Event[Any]]]]
# Builds a service's dependencies once its pool exists (ports and adapters bound to the pool and settings).
Bootstrap = Callable[[Settings, asyncpg.Pool], D | Awaitable[D]]


class FinishHook(Protocol):
    """Stores a finished handoff's outputs (and whatever must be recorded with them) in one unit of work."""

    async def __call__(
        self, checkpoints: Checkpoints, event: Event[Any], outputs: Sequence[Event[Any]]
    ) -> tuple[StoredOutput, ...]: ...  # pragma: no cover


async def finish_outputs(
    checkpoints: Checkpoints, event: Event[Any], outputs: Sequence[Event[Any]]
) -> tuple[StoredOutput, ...]:
    """The plain finish: only the checkpoint's outputs (services that track no incident, and tests)."""
    return await checkpoints.finish(event, outputs)


def retry_delay(deliveries: int, base_s: float, cap_s: float) -> float:
    """Delay before the next delivery of a failed message: exponential in deliveries so far, capped."""
    if deliveries < 1:
        deliveries = 1
    return float(min(cap_s, base_s * (2.0 ** min(deliveries - 1, 64))))


@dataclass
class StageContext(Generic[D]):
    """What a handler gets besides its event: settings, store, breakers and the service's own deps."""

    service: str
    consumer: ConsumerDef
    settings: Settings
    breakers: Breakers
    deps: D
    attempt: int = 1  # this delivery's number (progress is reported by the runtime's heartbeat)


@dataclass
class _Registration:
    consumer: ConsumerDef
    event_cls: type[Event[Any]]
    handler: Handler[Any]


@dataclass
class Service(Generic[D]):
    """One pipeline service: its handlers, one per consumer definition it owns."""

    name: str
    registrations: list[_Registration] = field(default_factory=list)

    def handler(self, durable: str | ConsumerDef, event_cls: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        consumer = streams.consumer(durable) if isinstance(durable, str) else durable
        if consumer.service != self.name:
            raise ValueError(f"consumer {consumer.durable!r} belongs to {consumer.service!r}, not {self.name!r}")
        if not subject_matches(consumer.subject, subjects.for_type(event_cls.TYPE)):
            raise ValueError(
                f"consumer {consumer.durable!r} receives {consumer.subject!r}, not {event_cls.TYPE!r} events"
            )

        def register(fn: Handler[E]) -> Handler[E]:
            self.registrations.append(_Registration(consumer, event_cls, fn))
            return fn

        return register


class StageRunner:
    """Processes the messages of one consumer (the kernel's part of every handoff)."""

    def __init__(
        self,
        reg: _Registration,
        *,
        service: str,
        settings: Settings,
        pool: asyncpg.Pool,
        broker: NatsBroker,
        breakers: Breakers,
        deps: Any,
        consumer: ConsumerDef,
        finish: FinishHook = finish_outputs,
    ) -> None:
        self.reg = reg
        self.service = service
        self.settings = settings
        self.pool = pool
        self.broker = broker
        self.breakers = breakers
        self.deps = deps
        self.consumer = consumer
        self.finish = finish
        self.checkpoints = Checkpoints(pool, consumer.durable)
        self.stopping = asyncio.Event()

    async def process(self, msg: NatsMessage) -> None:
        raw = msg.raw_message
        meta = raw.metadata
        seq = meta.sequence.stream
        deliveries = meta.num_delivered
        span = trace.get_current_span()
        span.set_attribute("pagerpatch.consumer", self.consumer.durable)
        span.set_attribute("pagerpatch.deliveries", deliveries)
        try:
            event = decode(msg.body, self.reg.event_cls)
        except (ValidationError, ValueError) as exc:
            await self._poison(msg, seq, deliveries, f"invalid {self.reg.event_cls.TYPE}: {_short(exc)}")
            return
        span.set_attribute("pagerpatch.event_id", str(event.event_id))
        if event.incident_id:
            span.set_attribute("pagerpatch.incident_id", str(event.incident_id))

        checkpoint = await self.checkpoints.begin(event)
        if checkpoint.status == "done":
            log.info(
                "%s: %s already handled; re-publishing its %d output(s)",
                self.consumer.durable,
                event.event_id,
                len(checkpoint.outputs),
            )
            await self._publish(checkpoint.outputs)
            await msg.ack()
            return
        if checkpoint.status == "dead":
            await msg.ack()
            return

        try:
            outputs = await self._handle(event, msg, deliveries)
        except Poison as exc:
            await self.checkpoints.dead(event.event_id, str(exc))
            await self._poison(msg, seq, deliveries, str(exc))
            return
        except _Stop as exc:
            await msg.nack(delay=exc.delay)
            return
        except Exception as exc:
            log.exception(
                "%s: handling %s failed (delivery %d of %d)",
                self.consumer.durable,
                event.event_id,
                deliveries,
                self.consumer.max_deliver,
            )
            await self.checkpoints.failed(event.event_id, f"{type(exc).__name__}: {exc}")
            delay = retry_delay(deliveries, self.settings.bus.retry_base_s, self.settings.bus.retry_cap_s)
            await msg.nack(delay=delay)
            return

        stored = await self.finish(self.checkpoints, event, outputs)
        await self._publish(stored)
        failpoints.reached(f"{self.consumer.durable}.after_publish")
        await msg.ack()

    async def _handle(self, event: Event[Any], msg: NatsMessage, deliveries: int) -> Sequence[Event[Any]]:
        """Run the handler; while a dependency is unavailable, wait in place and try again."""
        ctx: StageContext[Any] = StageContext(
            service=self.service,
            consumer=self.consumer,
            settings=self.settings,
            breakers=self.breakers,
            deps=self.deps,
            attempt=deliveries,
        )
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            return await self._retry_transient(event, ctx)
        finally:
            heartbeat.cancel()

    async def _retry_transient(self, event: Event[Any], ctx: StageContext[Any]) -> Sequence[Event[Any]]:
        while True:
            try:
                return await self.reg.handler(event, ctx)
            except Transient as exc:
                wait = max(0.05, exc.retry_after_s)
                log.warning("%s: %s waits %.1fs: %s", self.consumer.durable, event.event_id, wait, exc)
                if self.stopping.is_set():
                    raise _Stop(wait) from exc
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=wait)
                if self.stopping.is_set():
                    raise _Stop(wait) from exc

    async def _heartbeat(self, msg: NatsMessage) -> None:
        interval = max(0.5, self.consumer.ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _publish(self, outputs: Sequence[StoredOutput]) -> None:
        for out in outputs:
            await bus.publish_raw(
                self.broker, out.subject, out.data, str(out.event_id), timeout=self.settings.bus.publish_timeout_s
            )

    async def _poison(self, msg: NatsMessage, seq: int, deliveries: int, reason: str) -> None:
        await deadletter.record(
            self.pool,
            consumer=self.consumer.durable,
            stream=self.consumer.stream,
            stream_seq=seq,
            subject=msg.raw_message.subject,
            data=msg.body,
            reason=reason,
            kind="poison",
            deliveries=deliveries,
        )
        with contextlib.suppress(Exception):
            await bus.publish_raw(
                self.broker,
                subjects.deadletter(self.consumer.durable),
                msg.body,
                f"deadletter:{self.consumer.durable}:{seq}",
                headers={"Pagerpatch-Reason": reason[:500].replace("\n", " ")},
            )
        await msg.ack()

    async def record_advisory(self, msg: NatsMessage) -> None:
        """Record a max-deliveries advisory of this consumer as a dead letter."""
        try:
            adv = deadletter.MaxDeliveriesAdvisory.model_validate_json(msg.body)
        except ValidationError:
            log.error("unreadable advisory on %s: %r", msg.raw_message.subject, msg.body[:300])
            await msg.ack()
            return
        js = self.broker.config.connection_state.stream
        subject, data = "", b""
        try:
            stored = await js.get_msg(adv.stream, adv.stream_seq)
            subject, data = stored.subject or "", stored.data or b""
        except NotFoundError:
            log.error("message %s/%s is gone from the stream", adv.stream, adv.stream_seq)
        event_id = deadletter.event_id_of(data)
        last_error = await self.checkpoints.last_error(event_id) if event_id else None
        reason = f"gave up after {adv.deliveries} deliveries (max_deliver)"
        if last_error:
            reason += f"; last error: {last_error}"
        else:
            reason += "; the handler never finished (crash or ack timeout)"
        await deadletter.record(
            self.pool,
            consumer=adv.consumer,
            stream=adv.stream,
            stream_seq=adv.stream_seq,
            subject=subject,
            data=data,
            reason=reason,
            kind="max_deliveries",
            deliveries=adv.deliveries,
        )
        if event_id:
            await self.checkpoints.dead(event_id, reason)
        await msg.ack()


class _Stop(Exception):
    def __init__(self, delay: float) -> None:
        super().__init__("stopping")
        self.delay = delay


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        return "; ".join(parts)
    return str(exc)[:500]


@dataclass
class RunningService:
    broker: NatsBroker
    pool: asyncpg.Pool
    runners: list[StageRunner]


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
    service: Service[D], settings: Settings, bootstrap: Bootstrap[D], *, finish: FinishHook = finish_outputs
) -> RunningService:
    """Connect, build the service's dependencies on the pool, bind the durable consumers and start consuming."""
    if not settings.nats_url or not settings.database_url:
        raise RuntimeError("NATS_URL and DATABASE_URL must be set for a service process")
    provider = setup_tracing(service.name, settings.telemetry, settings.state_dir)
    failpoints.arm(settings.failpoints, settings.state_dir)
    broker = bus.make_broker(settings.nats_url, name=service.name, tracer_provider=provider, log_level=logging.DEBUG)
    pool = await create_pool(settings.database_url)
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
    return RunningService(broker=broker, pool=pool, runners=runners)


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
        running = await start_service(service, settings, bootstrap, finish=finish)
        try:
            await stop.wait()
        finally:
            await stop_service(running)

    uvloop.run(main())  # libuv's event loop: cheaper socket I/O for the many small Postgres and NATS round trips

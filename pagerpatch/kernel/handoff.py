"""One handoff, as every stage does it: validate -> checkpoint -> handle -> store outputs -> publish -> ack.

Poison is dead-lettered and acked; Transient waits (in place, reporting progress) and retries; any other failure
is nak'd with a growing delay until `max_deliver`, whose advisory this module records as a dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from faststream.nats import NatsBroker, NatsMessage
from nats.js.errors import NotFoundError
from opentelemetry import trace
from pydantic import ValidationError

from pagerpatch.kernel import bus, deadletter, failpoints, metrics, outage
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.checkpoints import Checkpoint, Checkpoints, StoredOutput
from pagerpatch.kernel.errors import Poison, Transient
from pagerpatch.settings import Settings
from schemas import subjects
from schemas.codec import decode
from schemas.envelope import Event
from schemas.streams import ConsumerDef

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event[Any])
T = TypeVar("T")
D = TypeVar("D")
Handler = Callable[[E, "StageContext[Any]"], Awaitable[Sequence[Event[Any]]]]


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
    return outage.backoff(deliveries, base_s, cap_s)


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
class Registration:
    consumer: ConsumerDef
    event_cls: type[Event[Any]]
    handler: Handler[Any]


class StageRunner:
    """Processes the messages of one consumer (the kernel's part of every handoff)."""

    def __init__(
        self,
        reg: Registration,
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
        # Deliveries of one event in this process run one after the other: a redelivery that arrives while the
        # first is still being handled (its ack_wait passed while the event loop was busy) waits for it, then
        # finds the checkpoint done and only re-publishes. Two handlings at once would share per-incident state
        # (a worktree path) and do the work twice. [lock, users]; dropped when nobody holds or waits for it.
        self._inflight: dict[uuid.UUID, tuple[asyncio.Lock, list[int]]] = {}

    async def process(self, msg: NatsMessage) -> None:
        """One delivery, start to ack; the heartbeat keeps it delivered while it waits (a slot, an outage)."""
        started = time.monotonic()
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self._process(msg)
        except outage.Stopped as exc:
            # Stopping mid-outage or mid-wait: the message goes back for another delivery after the delay.
            with contextlib.suppress(Exception):
                await msg.nack(delay=exc.delay)
        finally:
            heartbeat.cancel()
            metrics.handling_time(self.service, self.consumer.durable, time.monotonic() - started)

    async def _process(self, msg: NatsMessage) -> None:
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
        async with self._one_at_a_time(event.event_id):
            await self._handoff(event, msg, seq, deliveries)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, event_id: uuid.UUID) -> AsyncIterator[None]:
        lock, users = self._inflight.setdefault(event_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._inflight[event_id]

    async def _handoff(self, event: Event[Any], msg: NatsMessage, seq: int, deliveries: int) -> None:
        checkpoint = await self._store(lambda: self.checkpoints.begin(event), f"begin {event.event_id}")
        if checkpoint.status == "done":
            if deliveries == 1:
                # A second stream message with this event id (a producer's late copy or retry outside the
                # duplicate window). The message that finished the checkpoint published its outputs before it
                # was acked, or is still pending and re-publishes them when it is redelivered: publishing them
                # again here would only put second copies on the stream.
                log.info("%s: %s already handled as another message; acked", self.consumer.durable, event.event_id)
            else:
                log.info(
                    "%s: %s already handled; re-publishing its %d output(s)",
                    self.consumer.durable,
                    event.event_id,
                    len(checkpoint.outputs),
                )
                await self._publish(checkpoint.outputs)
            await msg.ack()
            metrics.handoff(self.service, self.consumer.durable, "duplicate")
            return
        if checkpoint.status == "dead":
            await msg.ack()
            metrics.handoff(self.service, self.consumer.durable, "duplicate")
            return

        try:
            outputs = await self._handle(event, deliveries)
        except Poison as exc:
            reason = str(exc)
            await self._store(lambda: self.checkpoints.dead(event.event_id, reason), f"dead {event.event_id}")
            await self._poison(msg, seq, deliveries, reason)
            return
        except outage.Stopped:
            raise
        except Exception as exc:
            log.exception(
                "%s: handling %s failed (delivery %d of %d)",
                self.consumer.durable,
                event.event_id,
                deliveries,
                self.consumer.max_deliver,
            )
            error = f"{type(exc).__name__}: {exc}"
            await self._store(lambda: self.checkpoints.failed(event.event_id, error), f"failed {event.event_id}")
            delay = retry_delay(deliveries, self.settings.bus.retry_base_s, self.settings.bus.retry_cap_s)
            await msg.nack(delay=delay)
            metrics.handoff(self.service, self.consumer.durable, "failed")
            return

        stored = await self._store(lambda: self.finish(self.checkpoints, event, outputs), f"finish {event.event_id}")
        await self._publish(stored)
        failpoints.reached(f"{self.consumer.durable}.after_publish")
        await msg.ack()
        metrics.handoff(self.service, self.consumer.durable, "handled")

    async def _store(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """A runtime store call; while Postgres is unreachable the message waits in place (never dead-lettered)."""
        return await outage.through(
            call,
            what=f"{self.consumer.durable}: store {what}",
            outage=lambda exc: outage.is_store_outage(exc, any_os_error=True),
            stopping=self.stopping,
        )

    async def _handle(self, event: Event[Any], deliveries: int) -> Sequence[Event[Any]]:
        """Run the handler; while a dependency (the store included) is unavailable, wait in place and retry."""
        ctx: StageContext[Any] = StageContext(
            service=self.service,
            consumer=self.consumer,
            settings=self.settings,
            breakers=self.breakers,
            deps=self.deps,
            attempt=deliveries,
        )
        outages = 0
        while True:
            try:
                return await self.reg.handler(event, ctx)
            except Transient as exc:
                wait, why = max(0.05, exc.retry_after_s), str(exc)
            except Exception as exc:
                if not outage.is_store_outage(exc):
                    raise
                outages += 1
                wait, why = outage.backoff(outages), f"store unavailable ({type(exc).__name__}: {exc})"
            log.warning("%s: %s waits %.1fs: %s", self.consumer.durable, event.event_id, wait, why)
            if self.stopping.is_set():
                raise outage.Stopped(wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=wait)
            if self.stopping.is_set():
                raise outage.Stopped(wait)

    async def _heartbeat(self, msg: NatsMessage) -> None:
        interval = max(0.5, self.consumer.ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _publish(self, outputs: Sequence[StoredOutput]) -> None:
        """Publish stored outputs; while NATS is unreachable, wait in place (the event id dedups retries)."""
        for out in outputs:
            await outage.through(
                lambda out=out: bus.publish_raw(  # type: ignore[misc]
                    self.broker, out.subject, out.data, str(out.event_id), timeout=self.settings.bus.publish_timeout_s
                ),
                what=f"{self.consumer.durable}: publish {out.event_id}",
                outage=outage.is_bus_outage,
                stopping=self.stopping,
            )

    async def _poison(self, msg: NatsMessage, seq: int, deliveries: int, reason: str) -> None:
        await self._store(
            lambda: deadletter.record(
                self.pool,
                consumer=self.consumer.durable,
                stream=self.consumer.stream,
                stream_seq=seq,
                subject=msg.raw_message.subject,
                data=msg.body,
                reason=reason,
                kind="poison",
                deliveries=deliveries,
            ),
            f"dead letter seq {seq}",
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
        metrics.handoff(self.service, self.consumer.durable, "poison")

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
        known = await self._store(lambda: self.checkpoints.get(event_id), "advisory") if event_id else None
        reason = advisory_reason(adv.deliveries, known)
        await self._store(
            lambda: deadletter.record(
                self.pool,
                consumer=adv.consumer,
                stream=adv.stream,
                stream_seq=adv.stream_seq,
                subject=subject,
                data=data,
                reason=reason,
                kind="max_deliveries",
                deliveries=adv.deliveries,
            ),
            f"dead letter seq {adv.stream_seq}",
        )
        if event_id and not (known and known.done):
            # A finished checkpoint stays finished: its outputs are what a later copy must not redo.
            await self._store(lambda: self.checkpoints.dead(event_id, reason), "advisory dead")
        await msg.ack()


def advisory_reason(deliveries: int, known: Checkpoint | None) -> str:
    """Why a message was given up after `max_deliver`, from what its checkpoint says."""
    reason = f"gave up after {deliveries} deliveries (max_deliver)"
    if known is None:
        return reason + "; no delivery reached its checkpoint (store unreachable, or a crash before it)"
    if known.last_error:
        return reason + f"; last error: {known.last_error}"
    return reason + "; the handler never finished (crash or ack timeout)"


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        return "; ".join(parts)
    return str(exc)[:500]

"""One handoff, as every stage does it: validate -> checkpoint -> handle -> store outputs -> publish -> ack.

Poison is dead-lettered and acked; Transient waits (in place, reporting progress) and retries; any other failure
is nak'd with a growing delay until `max_deliver`, whose advisory this module records as a dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from faststream.nats import NatsBroker, NatsMessage
from nats.js.errors import NotFoundError
from opentelemetry import trace
from pydantic import ValidationError

from pagerpatch.kernel import bus, deadletter, failpoints
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.checkpoints import Checkpoints, StoredOutput
from pagerpatch.kernel.errors import Poison, Transient
from pagerpatch.settings import Settings
from schemas import subjects
from schemas.codec import decode
from schemas.envelope import Event
from schemas.streams import ConsumerDef

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event[Any])
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

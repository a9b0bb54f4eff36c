"""Ingest's I/O behind its ports: the delivery-id ledger (Postgres), the bus (JetStream), SNS's HTTPS calls.

Each adapter turns its library's outage errors into `Transient` (the ports' contract), so the webhook flow answers
503 for exactly these and lets anything else surface as the bug it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import asyncpg
import httpx
import nats.errors
from faststream.nats import NatsBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from pagerpatch.kernel import bus
from pagerpatch.kernel.errors import Transient
from schemas.envelope import Event
from services.ingest.ports import Claim

log = logging.getLogger(__name__)

# Our own outages: answered 503 + Retry-After, never 4xx (providers disable hooks after repeated 4xx).
OUTAGES: tuple[type[BaseException], ...] = (
    TimeoutError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    nats.errors.Error,
)
REMOTE_FAILURES: tuple[type[BaseException], ...] = (httpx.HTTPError, *OUTAGES)


def _outage(what: str, exc: BaseException) -> Transient:
    return Transient(f"{what}: {type(exc).__name__}")


K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class Batcher(Generic[K, R]):
    """Coalesces concurrent calls into one round trip: while a batch is in flight, the next one gathers.

    No timer: at low load each call goes alone at once; under load a batch holds whatever arrived meanwhile.
    """

    def __init__(self, run: Callable[[list[K]], Awaitable[dict[K, R]]], max_batch: int = 512) -> None:
        self._run = run
        self._max = max_batch
        self._pending: list[tuple[K, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, key: K) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((key, fut))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._run(list(dict.fromkeys(k for k, _ in batch)))
                except Exception as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for key, fut in batch:
                    if not fut.done():
                        fut.set_result(results[key])
        finally:
            self._task = None


# ---------------------------------------------------------------- delivery ids


Key = tuple[str, str]

_CLAIM = """
INSERT INTO delivery_ids (source, delivery_id, event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
ON CONFLICT (source, delivery_id) DO UPDATE SET attempts = delivery_ids.attempts + 1
RETURNING source, delivery_id, event_id, published_at IS NOT NULL AS published
"""
_MARK = """
UPDATE delivery_ids SET published_at = now()
FROM unnest($1::text[], $2::text[]) AS d(source, delivery_id)
WHERE delivery_ids.source = d.source AND delivery_ids.delivery_id = d.delivery_id AND published_at IS NULL
"""


class PgDeliveryLedger:
    """`delivery_ids`: claim before publishing, mark after the PubAck; concurrent requests share round trips.

    A retry after the stream's duplicate window finds the row published and is answered without publishing;
    a retry of a delivery whose publish failed finds it unpublished and publishes (the stream drops doubles).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._event_ids: dict[Key, uuid.UUID] = {}
        self._claims: Batcher[Key, Claim] = Batcher(self._claim_many)
        self._marks: Batcher[Key, None] = Batcher(self._mark_many)

    async def claim(self, source: str, delivery_id: str, event_id: uuid.UUID) -> Claim:
        self._event_ids.setdefault((source, delivery_id), event_id)
        try:
            return await self._claims.submit((source, delivery_id))
        except OUTAGES as exc:
            raise _outage("claiming the delivery id", exc) from exc

    async def mark_published(self, source: str, delivery_id: str) -> None:
        try:
            await self._marks.submit((source, delivery_id))
        except OUTAGES as exc:
            raise _outage("marking the delivery published", exc) from exc

    async def ready(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def prune(self, older_than_s: float) -> int:
        done = await self.pool.execute(
            "DELETE FROM delivery_ids WHERE received_at < now() - make_interval(secs => $1)", older_than_s
        )
        return int(done.split()[-1])

    async def _claim_many(self, keys: list[Key]) -> dict[Key, Claim]:
        ids = [self._event_ids.pop(k) for k in keys]
        rows = await self.pool.fetch(_CLAIM, [k[0] for k in keys], [k[1] for k in keys], ids)
        return {(r["source"], r["delivery_id"]): Claim(r["event_id"], r["published"]) for r in rows}

    async def _mark_many(self, keys: list[Key]) -> dict[Key, None]:
        await self.pool.execute(_MARK, [k[0] for k in keys], [k[1] for k in keys])
        return dict.fromkeys(keys)


# ---------------------------------------------------------------- the bus


class JetStreamPublisher:
    """Publishes into the events stream with `pagerpatch.kernel.bus.publish` (True: the stream had it already), inside a
    producer span when tracing is on (its context travels in the message's W3C headers).

    The broker is made with `pending_size=0` (app.py): while NATS is unreachable a publish fails at
    once instead of waiting in a reconnect buffer, and a publish that failed is removed from that buffer.
    """

    def __init__(self, broker: NatsBroker, timeout_s: float, tracer_provider: TracerProvider | None = None) -> None:
        self.broker = broker
        self.timeout_s = timeout_s
        self._tracer = tracer_provider.get_tracer("pagerpatch.ingest") if tracer_provider is not None else None

    async def publish(self, event: Event[Any]) -> bool:
        try:
            if self._tracer is None:
                return await bus.publish(self.broker, event, timeout=self.timeout_s)
            with self._tracer.start_as_current_span(f"{event.subject} publish", kind=SpanKind.PRODUCER) as span:
                span.set_attribute("messaging.message.id", str(event.event_id))
                return await bus.publish(self.broker, event, timeout=self.timeout_s)
        except OUTAGES as exc:
            # Answered 503 means "not on the stream": a copy left in the client's reconnect buffer would be
            # published when NATS comes back, after the provider was told to retry.
            if bus.forget_unsent(self.broker, str(event.event_id)):
                log.warning("dropped an unsent publish of %s from the reconnect buffer", event.event_id)
            raise _outage(f"publishing {event.subject}", exc) from exc

    async def ready(self) -> None:
        await asyncio.wait_for(self.broker.config.connection_state.stream.account_info(), timeout=2)


# ---------------------------------------------------------------- SNS


class HttpSns:
    """Fetches (and caches) SNS signing certificates and confirms subscriptions, over HTTPS with httpx.

    Only URLs the SNS provider module validated reach here; `transport` lets tests serve them locally.
    """

    def __init__(self, ttl_s: float = 3600.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.ttl_s = ttl_s
        self._client = httpx.AsyncClient(transport=transport, timeout=5.0, follow_redirects=False)
        self._cache: dict[str, tuple[float, bytes]] = {}
        self.fetches = 0

    async def certificate(self, url: str) -> bytes:
        hit = self._cache.get(url)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        self.fetches += 1
        try:
            resp = await self._client.get(url)
            resp.raise_for_status()
            if len(resp.content) > 64_000:
                raise httpx.HTTPError("signing certificate too large")
        except REMOTE_FAILURES as exc:
            raise _outage("fetching the SNS signing certificate", exc) from exc
        self._cache[url] = (time.monotonic() + self.ttl_s, resp.content)
        return resp.content

    async def confirm(self, url: str) -> None:
        try:
            resp = await self._client.get(url)
            resp.raise_for_status()
        except REMOTE_FAILURES as exc:
            raise _outage("confirming the SNS subscription", exc) from exc

    async def aclose(self) -> None:
        await self._client.aclose()


async def prune_forever(ledger: PgDeliveryLedger, retention_s: float, every_s: float = 3600.0) -> None:
    """Forget delivery ids older than the retention (providers stop retrying long before)."""
    while True:
        try:
            removed = await ledger.prune(retention_s)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("could not prune delivery ids (next try in %.0fs): %s", every_s, type(exc).__name__)
        else:
            if removed:
                log.info("forgot %d delivery ids older than %.0fs", removed, retention_s)
        await asyncio.sleep(every_s)

"""The console's real I/O: read-only Postgres queries (plus its audit lines), the JetStream consumer state and a
live tail over nats-py, publishing through the kernel's bus, and the local `pagerpatch up` (runtime.json)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client.parser import text_string_to_metric_families

from pagerpatch.cli.incidents import _stage_outputs, _triage_lines
from pagerpatch.incidents import IncidentRepository
from pagerpatch.kernel import bus, store
from pagerpatch.ops import endpoints
from schemas import streams, subjects
from schemas.envelope import Event
from services.console.domain import BreakerReading, ConsumerLag, CostRow, IncidentFilter, breaker_state_name
from services.console.ports import (
    ApprovalRow,
    DeadLetterCount,
    IncidentRecord,
    IncidentRow,
    LlmCall,
    StageActivity,
    TailedEvent,
    UpInfo,
)

# The fix's strategy when there is one, else the diagnosis's, from the outputs the stages' checkpoints keep.
_INCIDENTS = f"""
SELECT i.id, i.state, i.severity, i.service, i.team, i.title, i.opened_at, i.last_seen_at, i.occurrences,
       pr.url AS pr_url,
       (SELECT coalesce(sum(l.cost_usd), 0) FROM llm_calls l WHERE l.incident_id = i.id) AS cost_usd,
       (SELECT (o->>'data')::jsonb #>> '{{payload,strategy}}'
          FROM checkpoints c, jsonb_array_elements(c.outputs) o
         WHERE c.incident_id = i.id AND c.status = 'done'
           AND o->>'subject' IN ('{subjects.FIX_VALIDATED}', '{subjects.DIAGNOSIS_READY}')
         ORDER BY o->>'subject' = '{subjects.FIX_VALIDATED}' DESC, c.finished_at DESC LIMIT 1) AS strategy
  FROM incidents i LEFT JOIN pull_requests pr ON pr.incident_id = i.id
 WHERE ($1::text IS NULL OR i.state = $1) AND ($2::text IS NULL OR i.service = $2)
   AND ($3::text IS NULL OR i.team = $3)
 ORDER BY i.opened_at DESC LIMIT $4"""

_LLM_CALLS = """SELECT at, agent, step, model, input_tokens, output_tokens, cache_read_tokens, cost_usd, latency_ms,
    outcome FROM llm_calls WHERE incident_id = $1 ORDER BY at, id"""

_COSTS = """SELECT (at AT TIME ZONE 'UTC')::date AS day, agent, coalesce(team, '-') AS team, count(*) AS calls,
    coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd
  FROM llm_calls WHERE at >= now() - make_interval(days => $1) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""

_STAGES = """SELECT stage, max(started_at) AS last_started, max(finished_at) AS last_finished,
    count(*) FILTER (WHERE status = 'started') AS in_flight,
    min(started_at) FILTER (WHERE status = 'started') AS oldest_in_flight,
    count(*) FILTER (WHERE status = 'dead') AS dead
  FROM checkpoints GROUP BY stage ORDER BY stage"""

_DEAD = """SELECT consumer, count(*) AS total, count(*) FILTER (WHERE redriven_at IS NULL) AS waiting
  FROM dead_letters GROUP BY consumer ORDER BY consumer"""


class PgConsoleStore:
    """Reads for the pages (the incident page reads exactly what `pagerpatch incidents show` reads)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def incidents(self, f: IncidentFilter, limit: int) -> list[IncidentRow]:
        rows = await self.pool.fetch(_INCIDENTS, f.state, f.service, f.team, limit)
        return [IncidentRow(**dict(r)) for r in rows]

    async def choices(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for column in ("state", "service", "team"):
            rows = await self.pool.fetch(f"SELECT DISTINCT {column} AS v FROM incidents WHERE {column} IS NOT NULL "
                                         f"ORDER BY 1 LIMIT 500")  # fmt: skip
            out[column] = [r["v"] for r in rows]
        return out

    async def incident(self, ref: str) -> IncidentRecord | None:
        async with self.pool.acquire() as conn:
            repo = IncidentRepository(conn)
            inc = await repo.find(ref)
            if inc is None:
                return None
            pr = await conn.fetchrow(
                "SELECT branch, url, head_commit, number, state FROM pull_requests WHERE incident_id = $1", inc.id
            )
            approval = await conn.fetchrow(
                """SELECT status, request_event_id, decided_by, reason, requested_at, decided_at FROM approvals
                   WHERE incident_id = $1""",
                inc.id,
            )
            audit = await conn.fetch(
                "SELECT at, actor, action, details FROM audit_log WHERE incident_id = $1 ORDER BY id", inc.id
            )
            return IncidentRecord(
                incident=inc,
                team=await conn.fetchval("SELECT team FROM incidents WHERE id = $1", inc.id),
                timeline=await repo.timeline(inc.id),
                pr=dict(pr) if pr else None,
                triage=await _triage_lines(conn, inc.id),
                outputs=await _stage_outputs(conn, inc.id),
                approval=ApprovalRow(**dict(approval)) if approval else None,
                llm_calls=[LlmCall(**dict(r)) for r in await conn.fetch(_LLM_CALLS, inc.id)],
                audit=[dict(r) for r in audit],
            )

    async def cost_rows(self, days: int) -> list[CostRow]:
        return [CostRow(**dict(r)) for r in await self.pool.fetch(_COSTS, days)]

    async def stage_activity(self) -> list[StageActivity]:
        return [StageActivity(**dict(r)) for r in await self.pool.fetch(_STAGES)]

    async def dead_letters(self) -> list[DeadLetterCount]:
        return [DeadLetterCount(**dict(r)) for r in await self.pool.fetch(_DEAD)]

    async def audit(self, *, actor: str, action: str, incident_id: uuid.UUID, details: dict[str, Any]) -> None:
        await store.audit(self.pool, actor=actor, action=action, incident_id=incident_id, details=details)


class NatsEventBus:
    """Consumer info and ephemeral ordered consumers on a nats-py connection; publishing through a FastStream broker
    with the kernel's `bus.publish` (the CLI's path: Nats-Msg-Id is the event id, the PubAck is awaited)."""

    def __init__(self, nc: NatsClient, broker: NatsBroker, *, publish_timeout_s: float = 5.0) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.broker = broker
        self.publish_timeout_s = publish_timeout_s

    async def consumer_lag(self) -> list[ConsumerLag]:
        out = []
        for c in streams.CONSUMERS:
            try:
                info = await self.js.consumer_info(c.stream, c.durable)
            except NotFoundError:
                out.append(ConsumerLag(c.durable, c.service, c.subject, found=False))
                continue
            out.append(ConsumerLag(
                c.durable, c.service, c.subject, True, info.num_pending or 0, info.num_ack_pending or 0,
                info.num_redelivered or 0, info.num_waiting or 0,
                info.delivered.last_active if info.delivered is not None else None,
            ))  # fmt: skip
        return out

    async def publish(self, event: Event[Any]) -> bool:
        return await bus.publish(self.broker, event, timeout=self.publish_timeout_s)

    async def tail(self, subject: str, backlog: int, keepalive_s: float) -> AsyncIterator[TailedEvent | None]:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW, inactive_threshold=60.0)
        if backlog > 0:
            state = (await self.js.stream_info(streams.EVENTS_STREAM)).state
            if state.messages:
                config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = max(state.first_seq, state.last_seq - backlog + 1)
        sub = await self.js.subscribe(subject, stream=streams.EVENTS_STREAM, ordered_consumer=True, config=config)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=keepalive_s)
                except TimeoutError:
                    yield None
                    continue
                seq = msg.metadata.sequence.stream if msg.reply else 0
                yield TailedEvent(seq, msg.subject, msg.data)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(sub.unsubscribe())


class MetricsBreakers:
    """Breaker states from the services' own /metrics (`pagerpatch_breaker_state`): breakers live in each process
    and are not persisted, so this is the one place they can be read. All endpoints are asked at once."""

    FAMILY = "pagerpatch_breaker_state"

    def __init__(self, urls: dict[str, str], *, timeout_s: float = 2.0) -> None:
        self.urls = urls
        self.timeout_s = timeout_s

    def endpoints(self) -> dict[str, str]:
        return dict(self.urls)

    async def breakers(self) -> list[BreakerReading]:
        if not self.urls:
            return []
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            found = await asyncio.gather(*(self._read(client, s, u) for s, u in self.urls.items()))
        return [r for readings in found for r in readings]

    async def _read(self, client: httpx.AsyncClient, service: str, url: str) -> list[BreakerReading]:
        try:
            resp = await client.get(url)
            resp.raise_for_status()
            families = list(text_string_to_metric_families(resp.text))
        except (httpx.HTTPError, ValueError) as exc:
            return [BreakerReading(service, problem=f"{url} did not answer: {type(exc).__name__}")]
        return [
            BreakerReading(service, s.labels.get("dependency", "?"), breaker_state_name(s.value))
            for f in families if f.name == self.FAMILY for s in f.samples
        ]  # fmt: skip


class LocalRuntime:
    """`pagerpatch up` on this state folder, when one runs: its pid, and whether its ingest answers /readyz."""

    def __init__(self, state_dir: Path, *, timeout_s: float = 1.0) -> None:
        self.state_dir = state_dir
        self.timeout_s = timeout_s

    async def up(self) -> UpInfo | None:
        live = endpoints.running(self.state_dir)
        if live is None:
            return None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                ready: bool | None = (await client.get(f"{live.ingest_url}/readyz")).status_code == 200
        except httpx.HTTPError:
            ready = False
        return UpInfo(live.pid, live.ingest_url, ready)

"""The cost ledger: one Postgres row per model call, the spend that budgets read, and the audit of tool refusals."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import asyncpg

from pagerpatch.llm.budgets import Spend
from pagerpatch.llm.pricing import Usage

Outcome = Literal["ok", "error", "unavailable", "budget_exceeded", "invalid_output"]


@dataclass(frozen=True)
class CallRecord:
    agent: str
    step: str
    team: str | None
    incident_id: str | None
    provider: str
    model: str
    usage: Usage
    cost_usd: float
    latency_ms: int
    outcome: Outcome
    estimate_usd: float | None = None
    attempts: int = 1
    error: str | None = None
    request_id: str | None = None
    kind: Literal["llm", "tool"] = "llm"
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Ledger(Protocol):
    async def record(self, rec: CallRecord) -> None: ...

    async def spend(self, *, agent: str, team: str | None, incident_id: str | None, now: datetime) -> Spend: ...

    async def audit(self, *, actor: str, action: str, incident_id: str | None, details: dict[str, Any]) -> None: ...


def day_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC) if now.tzinfo else datetime(now.year, now.month, now.day)


def _uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        # Incident ids are uuids everywhere in pagerpatch; anything else is a caller's label, hashed stably.
        return uuid.uuid5(uuid.NAMESPACE_URL, f"pagerpatch:incident:{value}")


class PgLedger:
    """The ledger in Postgres (`llm_calls`, `audit_log`; migration 0004)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, rec: CallRecord) -> None:
        await self.pool.execute(
            """INSERT INTO llm_calls (at, kind, agent, step, team, incident_id, provider, model, input_tokens,
                   output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, estimate_usd, latency_ms,
                   attempts, outcome, error, request_id)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)""",
            rec.at,
            rec.kind,
            rec.agent,
            rec.step,
            rec.team,
            _uuid(rec.incident_id),
            rec.provider,
            rec.model,
            rec.usage.input_tokens,
            rec.usage.output_tokens,
            rec.usage.cache_read_tokens,
            rec.usage.cache_write_tokens,
            rec.cost_usd,
            rec.estimate_usd,
            rec.latency_ms,
            rec.attempts,
            rec.outcome,
            (rec.error or None) and rec.error[:2000],
            rec.request_id,
        )

    async def spend(self, *, agent: str, team: str | None, incident_id: str | None, now: datetime) -> Spend:
        since = day_start(now)
        inc = _uuid(incident_id)
        row = await self.pool.fetchrow(
            """SELECT
                 coalesce(sum(cost_usd) FILTER (WHERE at >= $1 AND agent = $2), 0)            AS agent_day,
                 coalesce(sum(cost_usd) FILTER (WHERE incident_id = $4 AND agent = $2), 0)    AS agent_incident,
                 coalesce(sum(cost_usd) FILTER (WHERE at >= $1 AND team = $3), 0)             AS team_day,
                 coalesce(sum(cost_usd) FILTER (WHERE incident_id = $4), 0)                   AS incident,
                 coalesce(sum(cost_usd) FILTER (WHERE at >= $1), 0)                           AS day
               FROM llm_calls WHERE at >= $1 OR incident_id = $4""",
            since,
            agent,
            team,
            inc,
        )
        assert row is not None
        return Spend(**{k: float(row[k]) for k in ("agent_day", "agent_incident", "team_day", "incident", "day")})

    async def audit(self, *, actor: str, action: str, incident_id: str | None, details: dict[str, Any]) -> None:
        await self.pool.execute(
            "INSERT INTO audit_log (actor, action, incident_id, details) VALUES ($1, $2, $3, $4)",
            actor,
            action,
            _uuid(incident_id),
            details,
        )


class MemoryLedger:
    """The same ledger in memory, for tools that run without a database (benchmarks, dry runs)."""

    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.audits: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    async def record(self, rec: CallRecord) -> None:
        async with self._lock:
            self.calls.append(rec)

    async def spend(self, *, agent: str, team: str | None, incident_id: str | None, now: datetime) -> Spend:
        since = day_start(now)
        today = [c for c in self.calls if c.at >= since]
        on_incident = [c for c in self.calls if incident_id is not None and c.incident_id == incident_id]
        return Spend(
            agent_day=sum(c.cost_usd for c in today if c.agent == agent),
            agent_incident=sum(c.cost_usd for c in on_incident if c.agent == agent),
            team_day=sum(c.cost_usd for c in today if team is not None and c.team == team),
            incident=sum(c.cost_usd for c in on_incident),
            day=sum(c.cost_usd for c in today),
        )

    async def audit(self, *, actor: str, action: str, incident_id: str | None, details: dict[str, Any]) -> None:
        async with self._lock:
            self.audits.append({"actor": actor, "action": action, "incident_id": incident_id, "details": details})


def audit_details(details: dict[str, Any]) -> dict[str, Any]:
    """Details made JSON-safe for the audit log."""
    return dict(json.loads(json.dumps(details, default=str)))

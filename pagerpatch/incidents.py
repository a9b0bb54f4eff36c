"""The incident row is the source of truth for state; this module moves it forward and keeps its timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.envelope import Event

# The state an incident is in once an event of this type exists. States only move forward (by rank),
# except the terminal ones, which always win.
STATE_AFTER: dict[str, str] = {
    "incident.opened": "open",
    "diagnosis.ready": "diagnosed",
    "fix.validated": "fix_validated",
    "fix.failed": "failed",
    "approval.requested": "awaiting_approval",
    "fix.approved": "approved",
    "fix.rejected": "rejected",
    "pr.opened": "pr_opened",
}
RANK = {"open": 1, "diagnosed": 2, "fix_validated": 3, "awaiting_approval": 4, "approved": 5, "pr_opened": 6}
TERMINAL = {"failed", "rejected", "pr_closed", "resolved"}


def next_state(current: str, event_type: str) -> str:
    """Pure: the state after `event_type` happened to an incident in `current`."""
    target = STATE_AFTER.get(event_type)
    if target is None or current in TERMINAL:
        return current
    if target in TERMINAL:
        return target
    return target if RANK.get(target, 0) > RANK.get(current, 0) else current


def summarize(event: Event[Any]) -> str:
    p = event.payload
    for attr in ("title", "root_cause", "reason", "branch", "summary", "decision", "text"):
        value = getattr(p, attr, None)
        if value:
            return str(value).splitlines()[0][:300]
    return ""


def changes_state(events: Sequence[Event[Any]]) -> bool:
    """Whether recording `events` may move an incident's state (otherwise only timeline rows are added)."""
    return any(e.incident_id is not None and e.type in STATE_AFTER for e in events)


@dataclass(frozen=True)
class TimelineRows:
    """incident_events rows as parallel arrays, for one `unnest` insert."""

    event_ids: list[uuid.UUID]
    incident_ids: list[uuid.UUID]
    types: list[str]
    sources: list[str]
    occurred_at: list[datetime]
    summaries: list[str]

    def args(self) -> tuple[list[Any], ...]:
        return (self.event_ids, self.incident_ids, self.types, self.sources, self.occurred_at, self.summaries)


def timeline_rows(events: Sequence[Event[Any]]) -> TimelineRows:
    tracked = [e for e in events if e.incident_id is not None]
    return TimelineRows(
        event_ids=[e.event_id for e in tracked],
        incident_ids=[e.incident_id for e in tracked if e.incident_id is not None],
        types=[e.type for e in tracked],
        sources=[e.source for e in tracked],
        occurred_at=[e.occurred_at for e in tracked],
        summaries=[summarize(e) for e in tracked],
    )


# Appends timeline rows given as parallel arrays ($n .. $n+5), skipping ones already there.
INSERT_TIMELINE = """INSERT INTO incident_events (event_id, incident_id, type, source, occurred_at, summary)
    SELECT * FROM unnest($%d::uuid[], $%d::uuid[], $%d::text[], $%d::text[], $%d::timestamptz[], $%d::text[])
    ON CONFLICT (event_id) DO NOTHING"""


async def record(conn: asyncpg.Connection, events: Sequence[Event[Any]]) -> None:
    """Add events to their incidents' timelines and move each incident's state forward (in the caller's transaction)."""
    tracked = [e for e in events if e.incident_id is not None]
    if not tracked:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("incidents.record runs inside the caller's transaction")
    for e in tracked:
        inserted = await conn.fetchval(
            """INSERT INTO incident_events (event_id, incident_id, type, source, occurred_at, summary)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING RETURNING 1""",
            e.event_id,
            e.incident_id,
            e.type,
            e.source,
            e.occurred_at,
            summarize(e),
        )
        if not inserted or e.type not in STATE_AFTER:
            continue
        current = await conn.fetchval("SELECT state FROM incidents WHERE id = $1 FOR UPDATE", e.incident_id)
        if current is None:
            continue
        new = next_state(current, e.type)
        if new == current:
            continue
        terminal = new in TERMINAL
        await conn.execute(
            """UPDATE incidents SET state = $2, updated_at = now(),
                   closed_at = CASE WHEN $3 THEN now() ELSE closed_at END,
                   outcome = CASE WHEN $3 THEN $4 ELSE outcome END
               WHERE id = $1""",
            e.incident_id,
            new,
            terminal,
            f"{e.type}: {summarize(e)}" if terminal else None,
        )


@dataclass(frozen=True)
class IncidentView:
    id: uuid.UUID
    fingerprint: str
    state: str
    title: str
    service: str
    severity: str
    repo: str | None
    occurrences: int
    reasons: list[str]
    opened_at: datetime
    last_seen_at: datetime
    outcome: str | None


async def get(conn: asyncpg.Pool | asyncpg.Connection, incident_id: uuid.UUID) -> IncidentView | None:
    row = await conn.fetchrow(
        """SELECT id, fingerprint, state, title, service, severity, repo, occurrences, reasons, opened_at,
                  last_seen_at, outcome FROM incidents WHERE id = $1""",
        incident_id,
    )
    return IncidentView(**dict(row)) if row else None


async def find(conn: asyncpg.Pool | asyncpg.Connection, prefix: str) -> IncidentView | None:
    """An incident by full id or unambiguous id prefix."""
    try:
        return await get(conn, uuid.UUID(prefix))
    except ValueError:
        pass
    rows = await conn.fetch("SELECT id FROM incidents WHERE id::text LIKE $1 || '%' LIMIT 2", prefix.lower())
    if len(rows) != 1:
        return None
    return await get(conn, rows[0]["id"])


async def list_recent(conn: asyncpg.Pool | asyncpg.Connection, limit: int = 50) -> list[IncidentView]:
    rows = await conn.fetch(
        """SELECT id, fingerprint, state, title, service, severity, repo, occurrences, reasons, opened_at,
                  last_seen_at, outcome FROM incidents ORDER BY opened_at DESC LIMIT $1""",
        limit,
    )
    return [IncidentView(**dict(r)) for r in rows]


async def timeline(conn: asyncpg.Pool | asyncpg.Connection, incident_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT event_id, type, source, occurred_at, summary FROM incident_events
           WHERE incident_id = $1 ORDER BY occurred_at, type""",
        incident_id,
    )
    return [dict(r) for r in rows]

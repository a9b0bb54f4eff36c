"""The incident repository: the one place that reads and writes the `incidents` and `incident_events` tables.

The state machine it applies is pure (`state.py`); every stage records what happened through `finish_handoff`
(the runtime's finish hook) and reads through `IncidentRepository`; triage's grouping statements live beside it
in `grouping.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from pagerpatch.incidents.state import STATE_AFTER, TERMINAL, changes_state, next_state, outcome_of, timeline_rows
from pagerpatch.kernel.checkpoints import Checkpoints, StoredOutput
from schemas.envelope import Event

# Appends timeline rows given as parallel arrays ($4 .. $9, after the checkpoint's three), skipping known ones.
_INSERT_TIMELINE_AFTER_CHECKPOINT = """INSERT INTO incident_events (event_id, incident_id, type, source, occurred_at,
    summary) SELECT * FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::timestamptz[], $9::text[])
    ON CONFLICT (event_id) DO NOTHING"""

_COLUMNS = """id, fingerprint, state, title, service, severity, repo, occurrences, reasons, opened_at, last_seen_at,
    outcome"""


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

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


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
            timeline_rows([e]).summaries[0],
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
            outcome_of(e) if terminal else None,
        )


async def finish_handoff(
    checkpoints: Checkpoints, event: Event[Any], outputs: Sequence[Event[Any]]
) -> tuple[StoredOutput, ...]:
    """The runtime's finish hook for pipeline stages: the checkpoint's outputs and the incident's timeline (and
    state) are stored together, so a crash never leaves one without the other."""
    happened = [event, *outputs]
    if changes_state(happened):
        async with checkpoints.pool.acquire() as conn, conn.transaction():
            stored = await checkpoints.finish(event, outputs, conn)
            await record(conn, happened)
        return stored
    # The common case (a suppressed alert, a notification): one statement, one round trip.
    rows = timeline_rows(happened)
    return await checkpoints.finish_with(event, outputs, _INSERT_TIMELINE_AFTER_CHECKPOINT, *rows.args())


class IncidentRepository:
    """Reads of incidents and their timelines (for the CLI, the demo and the stages)."""

    def __init__(self, conn: asyncpg.Pool | asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, incident_id: uuid.UUID) -> IncidentView | None:
        row = await self.conn.fetchrow(f"SELECT {_COLUMNS} FROM incidents WHERE id = $1", incident_id)
        return IncidentView(**dict(row)) if row else None

    async def find(self, prefix: str) -> IncidentView | None:
        """An incident by full id or unambiguous id prefix."""
        try:
            return await self.get(uuid.UUID(prefix))
        except ValueError:
            pass
        rows = await self.conn.fetch("SELECT id FROM incidents WHERE id::text LIKE $1 || '%' LIMIT 2", prefix.lower())
        if len(rows) != 1:
            return None
        return await self.get(rows[0]["id"])

    async def list_recent(self, limit: int = 50) -> list[IncidentView]:
        rows = await self.conn.fetch(f"SELECT {_COLUMNS} FROM incidents ORDER BY opened_at DESC LIMIT $1", limit)
        return [IncidentView(**dict(r)) for r in rows]

    async def timeline(self, incident_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            """SELECT event_id, type, source, occurred_at, summary FROM incident_events
               WHERE incident_id = $1 ORDER BY occurred_at, type""",
            incident_id,
        )
        return [dict(r) for r in rows]

    async def state(self, incident_id: uuid.UUID) -> str | None:
        value: str | None = await self.conn.fetchval("SELECT state FROM incidents WHERE id = $1", incident_id)
        return value

    async def conclude(self, incident_id: uuid.UUID, state: str, outcome: str) -> bool:
        """End a live incident from outside the pipeline (its pull request merged or closed) in terminal `state`
        with `outcome`; False when it had already ended (or is unknown)."""
        if state not in TERMINAL:
            raise ValueError(f"{state!r} is not a terminal state")
        ended = await self.conn.fetchval(
            """UPDATE incidents SET state = $2, outcome = $3, closed_at = now(), updated_at = now()
               WHERE id = $1 AND state <> ALL($4::text[]) RETURNING 1""",
            incident_id,
            state,
            outcome,
            list(TERMINAL),
        )
        return bool(ended)

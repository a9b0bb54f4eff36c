"""Triage's store queries (the live incidents table)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.triage.logic import LiveIncident


async def live_incident(conn: asyncpg.Connection, fingerprint: str) -> LiveIncident | None:
    row = await conn.fetchrow(
        """SELECT id, last_seen_at, occurrences FROM incidents
           WHERE fingerprint = $1 AND state NOT IN ('resolved', 'rejected', 'failed', 'pr_closed')
           ORDER BY last_seen_at DESC LIMIT 1 FOR UPDATE""",
        fingerprint,
    )
    if row is None:
        return None
    return LiveIncident(id=str(row["id"]), last_seen_at=row["last_seen_at"], occurrences=row["occurrences"])


async def count_occurrence(
    conn: asyncpg.Connection, incident_id: uuid.UUID, alert_event_id: uuid.UUID, at: datetime, title: str
) -> int:
    """Count the alert against the incident once (a redelivered alert is not counted twice)."""
    inserted = await conn.fetchval(
        """INSERT INTO incident_events (event_id, incident_id, type, source, occurred_at, summary)
           VALUES ($1, $2, 'alert.received', 'ingest', $3, $4) ON CONFLICT (event_id) DO NOTHING RETURNING 1""",
        alert_event_id, incident_id, at, title[:300],
    )  # fmt: skip
    if inserted:
        await conn.execute(
            "UPDATE incidents SET occurrences = occurrences + 1, last_seen_at = greatest(last_seen_at, $2), "
            "updated_at = now() WHERE id = $1",
            incident_id,
            at,
        )
    value: int = await conn.fetchval("SELECT occurrences FROM incidents WHERE id = $1", incident_id)
    return value


async def open_incident(
    conn: asyncpg.Connection,
    *,
    incident_id: uuid.UUID,
    fingerprint: str,
    title: str,
    service: str,
    severity: str,
    repo: str | None,
    team: str | None,
    reasons: list[str],
    at: datetime,
) -> bool:
    """Insert the incident; False if it already exists (a redelivery) or a live one won the race."""
    row = await conn.fetchrow(
        """INSERT INTO incidents (id, fingerprint, state, title, service, severity, repo, team, reasons,
                                  opened_at, last_seen_at)
           VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $9, $9)
           ON CONFLICT DO NOTHING RETURNING id""",
        incident_id, fingerprint, title, service, severity, repo, team, reasons, at,
    )  # fmt: skip
    return row is not None


async def opened_incident(conn: asyncpg.Connection, incident_id: uuid.UUID) -> tuple[str, str | None, list[str]] | None:
    """Severity, repository and reasons of an incident already opened under this id, if any."""
    row = await conn.fetchrow("SELECT severity, repo, reasons FROM incidents WHERE id = $1", incident_id)
    return (row["severity"], row["repo"], list(row["reasons"])) if row else None

"""Review's store: the approvals table (blocking decisions re-read the live store)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Approval:
    incident_id: uuid.UUID
    status: str
    risk: dict[str, Any]
    fix: dict[str, Any]
    decided_by: str | None
    reason: str | None


async def request(
    pool: asyncpg.Pool, incident_id: uuid.UUID, risk: dict[str, Any], fix: dict[str, Any], event_id: uuid.UUID
) -> None:
    await pool.execute(
        """INSERT INTO approvals (incident_id, status, risk, fix, request_event_id)
           VALUES ($1, 'pending', $2, $3, $4) ON CONFLICT (incident_id) DO NOTHING""",
        incident_id,
        risk,
        fix,
        event_id,
    )


async def decide(
    conn: asyncpg.Connection, incident_id: uuid.UUID, decision: str, by: str, reason: str
) -> tuple[Approval | None, bool]:
    """Apply a decision to a pending approval. Returns the row and whether this call decided it."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT incident_id, status, risk, fix, decided_by, reason FROM approvals "
            "WHERE incident_id = $1 FOR UPDATE",
            incident_id,
        )
        if row is None:
            return None, False
        if row["status"] != "pending":
            return Approval(**dict(row)), False
        status = "approved" if decision == "approve" else "rejected"
        await conn.execute(
            "UPDATE approvals SET status = $2, decided_by = $3, reason = $4, decided_at = now() WHERE incident_id = $1",
            incident_id,
            status,
            by,
            reason,
        )
        return Approval(incident_id, status, row["risk"], row["fix"], by, reason), True

"""Review's Postgres adapters: the approvals table and the audit log (blocking decisions re-read the live store)."""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg

from pagerpatch.kernel import store
from schemas.events import FixValidatedPayload, RiskAssessment
from services.review.domain import Approval, AuditEntry, status_after


class PgApprovals:
    """The `approvals` table; a decision locks its row, so two deciders racing settle it exactly once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def request(
        self, incident_id: uuid.UUID, *, risk: RiskAssessment, fix: FixValidatedPayload, event_id: uuid.UUID
    ) -> None:
        await self.pool.execute(
            """INSERT INTO approvals (incident_id, status, risk, fix, request_event_id)
               VALUES ($1, 'pending', $2, $3, $4) ON CONFLICT (incident_id) DO NOTHING""",
            incident_id,
            risk.model_dump(mode="json"),
            fix.model_dump(mode="json"),
            event_id,
        )

    async def decide(
        self, incident_id: uuid.UUID, decision: Literal["approve", "reject"], *, by: str, reason: str, audit: AuditEntry
    ) -> tuple[Approval | None, bool]:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT incident_id, status, risk, fix, decided_by, reason FROM approvals "
                "WHERE incident_id = $1 FOR UPDATE",
                incident_id,
            )
            if row is None:
                return None, False
            if row["status"] != "pending":
                return Approval(**dict(row)), False
            status = status_after(decision)
            await conn.execute(
                "UPDATE approvals SET status = $2, decided_by = $3, reason = $4, decided_at = now() "
                "WHERE incident_id = $1",
                incident_id,
                status,
                by,
                reason,
            )
            # In the decision's transaction: a decision is never committed without its audit line (a retry after
            # a lost audit write would find the approval decided and emit nothing).
            await _write(conn, audit)
            return Approval(incident_id, status, row["risk"], row["fix"], by, reason), True


class PgAudit:
    """The `audit_log` table, one statement per line."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, entry: AuditEntry) -> None:
        await _write(self.pool, entry)


async def _write(conn: asyncpg.Connection | asyncpg.Pool, entry: AuditEntry) -> None:
    await store.audit(conn, actor=entry.actor, action=entry.action, incident_id=entry.incident_id,
                      details=entry.details)  # fmt: skip

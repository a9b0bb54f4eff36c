"""Review's adapters: the approvals table, the audit log and the preference pairs in Postgres (blocking decisions
re-read the live store), and the review agent's critique through the agent runtime."""

from __future__ import annotations

import logging
import uuid
from typing import Literal

import asyncpg

from pagerpatch.kernel import store
from pagerpatch.llm import BudgetExceeded, LlmError, LlmRuntime, LlmUnavailable, StructuredOutputError
from pagerpatch.settings import Settings
from schemas.events import FixValidatedPayload, RiskAssessment
from services.review import critique
from services.review.critique import Critique, Unavailable
from services.review.domain import Approval, AuditEntry, PreferencePair, preference_pair, status_after
from services.review.ports import Critic, NoCritic

log = logging.getLogger(__name__)


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
        self,
        incident_id: uuid.UUID,
        decision: Literal["approve", "reject"],
        *,
        by: str,
        reason: str,
        audit: AuditEntry,
        channel: str = "cli",
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
            decided = Approval(incident_id, status, row["risk"], row["fix"], by, reason)
            await _prefer(conn, preference_pair(decided, channel))  # the person's verdict, kept with the decision
            return decided, True


class PgAudit:
    """The `audit_log` table, one statement per line."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, entry: AuditEntry) -> None:
        await _write(self.pool, entry)


async def _write(conn: asyncpg.Connection | asyncpg.Pool, entry: AuditEntry) -> None:
    await store.audit(conn, actor=entry.actor, action=entry.action, incident_id=entry.incident_id,
                      details=entry.details)  # fmt: skip


async def _prefer(conn: asyncpg.Connection, pair: PreferencePair) -> None:
    await conn.execute(
        """INSERT INTO preferences (incident_id, outcome, reason, decided_by, channel, repo, strategy, diagnosis,
                                    patch, risk)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (incident_id) DO NOTHING""",
        pair.incident_id, pair.outcome, pair.reason, pair.decided_by, pair.channel, pair.repo, pair.strategy,
        pair.diagnosis, pair.patch, pair.risk,
    )  # fmt: skip


class LlmCritic:
    """The review agent through the agent runtime (structured output, costed, budgeted, redacted).

    The critique never holds review up: when the model is unavailable (breaker open, retries spent), over budget
    or answers nonsense, the rules alone decide and the risk says why.
    """

    def __init__(self, runtime: LlmRuntime) -> None:
        self.runtime = runtime

    @property
    def enabled(self) -> bool:
        return self.runtime.enabled

    async def critique(
        self, fix: FixValidatedPayload, rules: RiskAssessment, *, incident_id: uuid.UUID | None, team: str | None
    ) -> Critique | Unavailable:
        try:
            return await self.runtime.structured(
                agent="review", step="critique", output=Critique, prompt=critique.prompt(fix, rules),
                incident_id=None if incident_id is None else str(incident_id), team=team,
            )  # fmt: skip
        except BudgetExceeded as exc:
            log.warning("review critique for %s over budget (%s); rules only", incident_id, exc)
            return Unavailable(f"over budget: {exc}")
        except (LlmUnavailable, LlmError, StructuredOutputError) as exc:
            log.warning("review critique for %s unavailable (%s); rules only", incident_id, exc)
            return Unavailable(f"{type(exc).__name__}: {exc}")


def make_critic(settings: Settings, pool: asyncpg.Pool | None) -> Critic:
    """The review agent when a model is configured; otherwise none (rules only).

    Invalid agent-runtime configuration (tools/agents/policies files) fails start-up with its file:line message.
    """
    runtime = LlmRuntime.create(settings, pool)
    return LlmCritic(runtime) if runtime.enabled else NoCritic()

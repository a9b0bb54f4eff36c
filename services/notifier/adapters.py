"""Notifier's Postgres adapters: pull request records and the notifications table (both idempotent)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.notifier.domain import PullRequest
from services.notifier.outbox import OutboxEntry, Remote
from services.notifier.thread_facts import Patch, ThreadState, merge

log = logging.getLogger("pagerpatch.notifications")


PUSHING = "pushing"  # the record's state between the intent and the completed push ('open' after)


class PgPullRequests:
    """The `pull_requests` table, unique per incident: an intent row (state 'pushing') first, completed after."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def intend(self, incident_id: uuid.UUID, pr: PullRequest) -> None:
        await self.pool.execute(
            """INSERT INTO pull_requests (incident_id, repo, provider, branch, head_commit, title, body, url, state)
               VALUES ($1, $2, $3, $4, '', $5, $6, '', $7) ON CONFLICT (incident_id) DO NOTHING""",
            incident_id, pr.repo, pr.provider, pr.branch, pr.title, pr.body, PUSHING,
        )  # fmt: skip

    async def record(self, incident_id: uuid.UUID, pr: PullRequest) -> None:
        await self.pool.execute(
            """INSERT INTO pull_requests (incident_id, repo, provider, branch, head_commit, title, body, url, number)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10) ON CONFLICT (incident_id) DO UPDATE
               SET head_commit = EXCLUDED.head_commit, url = EXCLUDED.url, number = EXCLUDED.number, state = 'open'
               WHERE pull_requests.state = $9""",
            incident_id, pr.repo, pr.provider, pr.branch, pr.head_commit, pr.title, pr.body, pr.url, PUSHING,
            pr.number,
        )  # fmt: skip

    async def incident_for(self, *, provider: str, branch: str, number: int | None) -> uuid.UUID | None:
        found: uuid.UUID | None = await self.pool.fetchval(
            """SELECT incident_id FROM pull_requests WHERE provider = $1 AND (branch = $2 OR ($2 = '' AND number = $3))
               ORDER BY id LIMIT 1""",
            provider, branch, number,
        )  # fmt: skip
        return found

    async def set_state(self, incident_id: uuid.UUID, state: str) -> None:
        await self.pool.execute("UPDATE pull_requests SET state = $2 WHERE incident_id = $1", incident_id, state)


class PgNotifications:
    """The `notifications` table, unique per (about_event_id, channel, kind); the log channel prints what it adds."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def notify(
        self, *, about: uuid.UUID, kind: str, text: str, incident_id: uuid.UUID | None, channel: str = "log"
    ) -> bool:
        inserted = await self.pool.fetchval(
            """INSERT INTO notifications (about_event_id, channel, kind, text, incident_id)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (about_event_id, channel, kind) DO NOTHING RETURNING 1""",
            about, channel, kind, text, incident_id,
        )  # fmt: skip
        if inserted:
            log.info("[%s] %s", kind, text)
        return bool(inserted)


_OUTBOX_COLUMNS = "incident_id, kind, target, state, remote_id, remote_url, detail, attempts, last_error, updated_at"


def _entry(row: asyncpg.Record) -> OutboxEntry:
    return OutboxEntry(**dict(row))


class PgOutbox:
    """The `outbox` table (migration 0010): one row per side effect, keyed (incident_id, kind, target)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, incident_id: uuid.UUID, kind: str, target: str) -> OutboxEntry | None:
        row = await self.pool.fetchrow(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE incident_id = $1 AND kind = $2 AND target = $3",
            incident_id, kind, target,
        )  # fmt: skip
        return _entry(row) if row else None

    async def begin(self, incident_id: uuid.UUID, kind: str, target: str) -> None:
        await self.pool.execute(
            """INSERT INTO outbox (incident_id, kind, target, attempts) VALUES ($1, $2, $3, 1)
               ON CONFLICT (incident_id, kind, target) DO UPDATE
               SET attempts = outbox.attempts + 1, state = 'pending', updated_at = now()
               WHERE outbox.state <> 'done'""",
            incident_id, kind, target,
        )  # fmt: skip

    async def done(self, incident_id: uuid.UUID, kind: str, target: str, remote: Remote) -> OutboxEntry:
        row = await self.pool.fetchrow(
            f"""INSERT INTO outbox (incident_id, kind, target, state, remote_id, remote_url, detail, attempts, done_at)
               VALUES ($1, $2, $3, 'done', $4, $5, $6, 1, now())
               ON CONFLICT (incident_id, kind, target) DO UPDATE
               SET state = 'done', remote_id = EXCLUDED.remote_id, remote_url = EXCLUDED.remote_url,
                   detail = outbox.detail || EXCLUDED.detail, last_error = NULL, updated_at = now(), done_at = now()
               WHERE outbox.state <> 'done'
               RETURNING {_OUTBOX_COLUMNS}""",
            incident_id, kind, target, remote.id, remote.url, remote.detail,
        )  # fmt: skip
        if row is None:  # done before (a concurrent or earlier attempt): the first remote stays
            row = await self.get(incident_id, kind, target)
            assert row is not None
            return row
        return _entry(row)

    async def fail(self, incident_id: uuid.UUID, kind: str, target: str, reason: str) -> None:
        await self.pool.execute(
            """INSERT INTO outbox (incident_id, kind, target, state, last_error, attempts)
               VALUES ($1, $2, $3, 'failed', $4, 1)
               ON CONFLICT (incident_id, kind, target) DO UPDATE
               SET state = 'failed', last_error = EXCLUDED.last_error, updated_at = now()
               WHERE outbox.state <> 'done'""",
            incident_id, kind, target, reason,
        )  # fmt: skip

    async def attempt_failed(self, incident_id: uuid.UUID, kind: str, target: str, error: str) -> None:
        await self.pool.execute(
            """UPDATE outbox SET last_error = $4, updated_at = now()
               WHERE incident_id = $1 AND kind = $2 AND target = $3 AND state = 'pending'""",
            incident_id, kind, target, error,
        )  # fmt: skip

    async def update_detail(self, incident_id: uuid.UUID, kind: str, target: str, detail: dict[str, Any]) -> None:
        await self.pool.execute(
            """UPDATE outbox SET detail = detail || $4, updated_at = now()
               WHERE incident_id = $1 AND kind = $2 AND target = $3""",
            incident_id, kind, target, detail,
        )  # fmt: skip

    async def entries(self, incident_id: uuid.UUID) -> list[OutboxEntry]:
        rows = await self.pool.fetch(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE incident_id = $1 ORDER BY id", incident_id
        )
        return [_entry(r) for r in rows]


class PgThreads:
    """The `notifier_threads` table (migration 0011): each incident's thread facts, merged under a row lock."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def apply(self, incident_id: uuid.UUID, team: str | None, patch: Patch) -> ThreadState:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO notifier_threads (incident_id, team) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                incident_id, team,
            )  # fmt: skip
            row = await conn.fetchrow(f"SELECT {_THREAD_COLUMNS} FROM notifier_threads WHERE incident_id = $1 "
                                      "FOR UPDATE", incident_id)  # fmt: skip
            facts = merge(row["facts"], patch.facts)
            row = await conn.fetchrow(
                f"""UPDATE notifier_threads SET facts = $2, team = COALESCE(team, $3),
                       approval_requested_at = COALESCE(approval_requested_at, $4),
                       approval_settled_at = CASE WHEN $5 THEN COALESCE(approval_settled_at, now())
                                                  ELSE approval_settled_at END,
                       updated_at = now()
                   WHERE incident_id = $1 RETURNING {_THREAD_COLUMNS}""",
                incident_id, facts, team, patch.approval_requested_at, patch.approval_settled,
            )  # fmt: skip
        return _thread(row)

    async def get(self, incident_id: uuid.UUID) -> ThreadState | None:
        row = await self.pool.fetchrow(f"SELECT {_THREAD_COLUMNS} FROM notifier_threads WHERE incident_id = $1",
                                       incident_id)  # fmt: skip
        return _thread(row) if row else None

    async def rendered(self, incident_id: uuid.UUID, message: str, digest: str) -> None:
        await self.pool.execute(
            """UPDATE notifier_threads SET rendered = rendered || jsonb_build_object($2::text, $3::text),
                   updated_at = now() WHERE incident_id = $1""",
            incident_id, message, digest,
        )  # fmt: skip

    async def waiting(self, requested_before: datetime) -> list[ThreadState]:
        rows = await self.pool.fetch(
            f"""SELECT {_THREAD_COLUMNS} FROM notifier_threads
                WHERE approval_requested_at IS NOT NULL AND approval_requested_at < $1
                  AND approval_settled_at IS NULL AND escalated_at IS NULL
                ORDER BY approval_requested_at LIMIT 100""",
            requested_before,
        )  # fmt: skip
        return [_thread(r) for r in rows]

    async def escalated(self, incident_id: uuid.UUID) -> None:
        await self.pool.execute(
            "UPDATE notifier_threads SET escalated_at = COALESCE(escalated_at, now()) WHERE incident_id = $1",
            incident_id,
        )


_THREAD_COLUMNS = "incident_id, team, facts, rendered, approval_requested_at"


def _thread(row: asyncpg.Record) -> ThreadState:
    return ThreadState(**dict(row))

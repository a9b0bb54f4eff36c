"""Notifier's Postgres adapters: pull request records and the notifications table (both idempotent)."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from services.notifier.domain import PullRequest

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

    async def record(self, incident_id: uuid.UUID, pr: PullRequest) -> int:
        await self.pool.execute(
            """INSERT INTO pull_requests (incident_id, repo, provider, branch, head_commit, title, body, url)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (incident_id) DO UPDATE
               SET head_commit = EXCLUDED.head_commit, url = EXCLUDED.url, state = 'open'
               WHERE pull_requests.state = $9""",
            incident_id, pr.repo, pr.provider, pr.branch, pr.head_commit, pr.title, pr.body, pr.url, PUSHING,
        )  # fmt: skip
        pr_id: int = await self.pool.fetchval("SELECT id FROM pull_requests WHERE incident_id = $1", incident_id)
        return pr_id


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

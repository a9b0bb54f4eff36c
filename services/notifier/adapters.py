"""Notifier's store: pull request records and the notifications table (both idempotent)."""

from __future__ import annotations

import logging
import uuid

import asyncpg

log = logging.getLogger("pagerpatch.notifications")


async def record_pull_request(
    pool: asyncpg.Pool,
    *,
    incident_id: uuid.UUID,
    repo: str,
    provider: str,
    branch: str,
    head: str,
    title: str,
    body: str,
    url: str,
) -> int:
    """One pull request record per incident; returns its id (existing or new)."""
    await pool.execute(
        """INSERT INTO pull_requests (incident_id, repo, provider, branch, head_commit, title, body, url)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (incident_id) DO NOTHING""",
        incident_id, repo, provider, branch, head, title, body, url,
    )  # fmt: skip
    pr_id: int = await pool.fetchval("SELECT id FROM pull_requests WHERE incident_id = $1", incident_id)
    return pr_id


async def notify(
    pool: asyncpg.Pool, *, about: uuid.UUID, kind: str, text: str, incident_id: uuid.UUID | None, channel: str = "log"
) -> bool:
    """Write a notification once per (event, channel, kind); the log channel prints it."""
    inserted = await pool.fetchval(
        """INSERT INTO notifications (about_event_id, channel, kind, text, incident_id)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (about_event_id, channel, kind) DO NOTHING RETURNING 1""",
        about, channel, kind, text, incident_id,
    )  # fmt: skip
    if inserted:
        log.info("[%s] %s", kind, text)
    return bool(inserted)

"""Ingest's store: provider delivery ids, kept longer than the stream's duplicate window."""

from __future__ import annotations

import uuid

import asyncpg


async def seen(pool: asyncpg.Pool, source: str, delivery_id: str) -> uuid.UUID | None:
    value: uuid.UUID | None = await pool.fetchval(
        "SELECT event_id FROM delivery_ids WHERE source = $1 AND delivery_id = $2", source, delivery_id
    )
    return value


async def remember(pool: asyncpg.Pool, source: str, delivery_id: str, event_id: uuid.UUID) -> None:
    await pool.execute(
        "INSERT INTO delivery_ids (source, delivery_id, event_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        source,
        delivery_id,
        event_id,
    )

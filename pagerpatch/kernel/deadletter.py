"""Dead letters: poison input and max-deliveries exhaustion, recorded in Postgres with the reason."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)


class MaxDeliveriesAdvisory(BaseModel):
    """`io.nats.jetstream.advisory.v1.max_deliver`, as the server publishes it."""

    model_config = ConfigDict(extra="ignore")

    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    stream: str
    stream_seq: int
    subject: str
    event_id: uuid.UUID | None
    reason: str
    kind: str
    deliveries: int | None
    recorded_at: Any


def event_id_of(data: bytes) -> uuid.UUID | None:
    """The event id of a (possibly malformed) message body, when one can be read."""
    try:
        value = json.loads(data).get("event_id")
        return uuid.UUID(str(value)) if value else None
    except (ValueError, AttributeError, TypeError):
        return None


async def record(
    pool: asyncpg.Pool,
    *,
    consumer: str,
    stream: str,
    stream_seq: int,
    subject: str,
    data: bytes,
    reason: str,
    kind: str,
    deliveries: int | None,
) -> bool:
    """Insert a dead letter once per (consumer, stream, sequence). Returns False if it was already there."""
    text = data.decode("utf-8", errors="replace")[:65_536]
    row = await pool.fetchrow(
        """
        INSERT INTO dead_letters (consumer, stream, stream_seq, subject, event_id, reason, kind, deliveries, data)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (consumer, stream, stream_seq) DO NOTHING
        RETURNING id
        """,
        consumer,
        stream,
        stream_seq,
        subject,
        event_id_of(data),
        reason[:4000],
        kind,
        deliveries,
        text,
    )
    if row is not None:
        log.warning("dead letter #%s on %s (seq %s): %s", row["id"], consumer, stream_seq, reason[:300])
    return row is not None


async def list_dead_letters(conn: asyncpg.Pool | asyncpg.Connection, limit: int = 100) -> list[DeadLetter]:
    rows = await conn.fetch(
        """SELECT id, consumer, stream, stream_seq, subject, event_id, reason, kind, deliveries, recorded_at
           FROM dead_letters ORDER BY id DESC LIMIT $1""",
        limit,
    )
    return [DeadLetter(**dict(r)) for r in rows]

"""Dead letters: poison input and max-deliveries exhaustion, recorded in Postgres with the reason.

`redrive` puts a dead letter's message back on the events stream once its cause is fixed (`pagerpatch dlq redrive`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from pydantic import BaseModel, ConfigDict

from pagerpatch.kernel import metrics, store
from schemas import streams

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
    redriven_at: Any = None
    data: str = ""  # the stored message body; read only by `redrive`, not by the listing


def event_id_of(data: bytes | str) -> uuid.UUID | None:
    """The event id of a (possibly malformed) message body, when one can be read."""
    return _id_field(data, "event_id")


def _id_field(data: bytes | str, key: str) -> uuid.UUID | None:
    try:
        value = json.loads(data).get(key)
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
        metrics.dead_letter(consumer, kind)
    return row is not None


_COLUMNS = "id, consumer, stream, stream_seq, subject, event_id, reason, kind, deliveries, recorded_at, redriven_at"


async def list_dead_letters(conn: asyncpg.Pool | asyncpg.Connection, limit: int = 100) -> list[DeadLetter]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters ORDER BY id DESC LIMIT $1",
        limit,
    )
    return [DeadLetter(**dict(r)) for r in rows]


async def get_dead_letter(conn: asyncpg.Pool | asyncpg.Connection, letter_id: int) -> DeadLetter | None:
    """One dead letter with its stored message body, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS}, data FROM dead_letters WHERE id = $1", letter_id)
    return None if row is None else DeadLetter(**dict(row))


@dataclass(frozen=True)
class Redrive:
    """What `redrive` did (or, on a dry run, would do) with one dead letter: `done` False means it was skipped."""

    letter_id: int
    done: bool
    message: str


def redrive_refusal(letter: DeadLetter | None, checkpoint_status: str | None) -> str | None:
    """Why a dead letter must not be redriven, or None when it may be (pure: the row and its checkpoint's status)."""
    if letter is None:
        return "no such dead letter"
    if letter.redriven_at is not None:
        return f"already redriven at {str(letter.redriven_at)[:19]}"
    if letter.event_id is None:
        # Without an event id the body is not an event: every consumer would dead-letter it again at once.
        return "poison: the stored body is not a valid event (no event id); it would only be dead-lettered again"
    if checkpoint_status == "done":
        return f"event {letter.event_id} is already handled by {letter.consumer} (checkpoint done)"
    return None


async def select_for_redrive(conn: asyncpg.Connection, ids: Sequence[int], consumer: str | None) -> list[int]:
    """The ids named (unknown ones kept: `redrive` reports them), or, without ids, every letter not yet redriven.

    `consumer` narrows either selection to one durable consumer's letters.
    """
    if ids:
        rows = await conn.fetch("SELECT id, consumer FROM dead_letters WHERE id = ANY($1::bigint[])", list(ids))
        other = {r["id"] for r in rows if consumer is not None and r["consumer"] != consumer}
        return [i for i in dict.fromkeys(ids) if i not in other]
    rows = await conn.fetch(
        "SELECT id FROM dead_letters WHERE redriven_at IS NULL AND ($1::text IS NULL OR consumer = $1) ORDER BY id",
        consumer,
    )
    return [r["id"] for r in rows]


async def redrive(
    conn: asyncpg.Connection, js: JetStreamContext, letter_id: int, *, dry_run: bool = False, actor: str = "cli"
) -> Redrive:
    """Publish one dead letter's message again, its consumer's checkpoint reset from 'dead' to 'started'.

    The checkpoint reset, the redriven mark and the audit line commit only after the stream acknowledged the
    publish; the consumer's `begin` waits on the reset row's lock, so it never sees the event still 'dead'. The
    message id `redrive:<id>` lets the stream drop a second publish of the same letter.
    """
    async with conn.transaction():
        row = await conn.fetchrow(f"SELECT {_COLUMNS}, data FROM dead_letters WHERE id = $1 FOR UPDATE", letter_id)
        letter = None if row is None else DeadLetter(**dict(row))
        status = None
        if letter is not None and letter.event_id is not None:
            status = await conn.fetchval(
                "SELECT status FROM checkpoints WHERE event_id = $1 AND stage = $2", letter.event_id, letter.consumer
            )
        refusal = redrive_refusal(letter, status)
        if refusal is not None or letter is None:
            return Redrive(letter_id, False, refusal or "no such dead letter")
        what = f"{letter.consumer}: event {letter.event_id} to {letter.subject}"
        if dry_run:
            return Redrive(letter_id, True, f"would redrive {what}")
        # attempts 0: `begin` counts the redriven delivery as the first; last_error stays for the operator.
        await conn.execute(
            """UPDATE checkpoints SET status = 'started', attempts = 0, finished_at = NULL
               WHERE event_id = $1 AND stage = $2 AND status = 'dead'""",
            letter.event_id,
            letter.consumer,
        )
        await conn.execute("UPDATE dead_letters SET redriven_at = now() WHERE id = $1", letter_id)
        await store.audit(
            conn,
            actor=actor,
            action="dlq.redrive",
            incident_id=_id_field(letter.data, "incident_id"),
            details={"dead_letter": letter_id, "consumer": letter.consumer, "event_id": str(letter.event_id)},
        )
        headers = {"Nats-Msg-Id": f"redrive:{letter_id}", "content-type": "application/json"}
        ack = await js.publish(letter.subject, letter.data.encode(), stream=streams.EVENTS_STREAM, headers=headers)
    note = " (the stream already had it)" if ack.duplicate else ""
    return Redrive(letter_id, True, f"redriven {what}, stream seq {ack.seq}{note}")

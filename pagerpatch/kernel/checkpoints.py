"""Checkpoints: `(event_id, stage)` recorded when work starts and its outputs when it finishes.

A redelivered event whose work is done is answered by re-publishing the stored outputs, never by redoing it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from schemas.codec import encode
from schemas.envelope import Event

Status = Literal["started", "done", "dead"]


@dataclass(frozen=True)
class StoredOutput:
    event_id: uuid.UUID
    subject: str
    data: bytes


@dataclass(frozen=True)
class Checkpoint:
    status: Status
    attempts: int
    outputs: tuple[StoredOutput, ...]
    last_error: str | None

    @property
    def done(self) -> bool:
        return self.status == "done"


def _outputs(rows: Sequence[dict[str, Any]]) -> tuple[StoredOutput, ...]:
    return tuple(
        StoredOutput(event_id=uuid.UUID(o["event_id"]), subject=o["subject"], data=o["data"].encode()) for o in rows
    )


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        status=row["status"], attempts=row["attempts"], outputs=_outputs(row["outputs"]), last_error=row["last_error"]
    )


def _stored(outputs: Sequence[Event[Any]]) -> list[dict[str, str]]:
    """Outputs as the checkpoint row keeps them (what a redelivery re-publishes)."""
    return [{"event_id": str(o.event_id), "subject": o.subject, "data": encode(o).decode()} for o in outputs]


_FINISH = """UPDATE checkpoints SET status = 'done', outputs = $3, finished_at = now(), last_error = NULL
    WHERE event_id = $1 AND stage = $2 AND status <> 'done'"""


class Checkpoints:
    """Checkpoint store of one stage (one service's handler of one event kind)."""

    def __init__(self, pool: asyncpg.Pool, stage: str) -> None:
        self.pool = pool
        self.stage = stage

    async def begin(self, event: Event[Any]) -> Checkpoint:
        """Record that work on `event` starts (or starts again) and return what is known of it."""
        row = await self.pool.fetchrow(
            """
            INSERT INTO checkpoints (event_id, stage, status, event_type, incident_id)
            VALUES ($1, $2, 'started', $3, $4)
            ON CONFLICT (event_id, stage) DO UPDATE
                SET attempts = checkpoints.attempts + (checkpoints.status = 'started')::int
            RETURNING status, attempts, outputs, last_error
            """,
            event.event_id,
            self.stage,
            event.type,
            event.incident_id,
        )
        assert row is not None
        return _checkpoint(row)

    async def finish(
        self, event: Event[Any], outputs: Sequence[Event[Any]], conn: asyncpg.Connection | None = None
    ) -> tuple[StoredOutput, ...]:
        """Store the outputs of finished work; they are what a redelivery re-publishes.

        Returns the outputs the checkpoint holds: a racing delivery that finished first keeps its own outputs,
        and those (not this run's) are the ones to publish, so the stream never gets two different answers.
        """
        db = conn or self.pool
        stored = _stored(outputs)
        changed = await db.fetchval(_FINISH + " RETURNING 1", event.event_id, self.stage, stored)
        return _outputs(stored) if changed else await self._kept_outputs(db, event)

    async def finish_with(
        self, event: Event[Any], outputs: Sequence[Event[Any]], then: str, *args: Any
    ) -> tuple[StoredOutput, ...]:
        """`finish` plus one more data-modifying statement `then` (its parameters numbered from $4), as one
        statement: atomic without a transaction's extra round trips."""
        stored = _stored(outputs)
        sql = f"WITH done AS ({_FINISH} RETURNING 1), also AS ({then}) SELECT count(*) FROM done"
        changed = await self.pool.fetchval(sql, event.event_id, self.stage, stored, *args)
        return _outputs(stored) if changed else await self._kept_outputs(self.pool, event)

    async def _kept_outputs(self, db: asyncpg.Pool | asyncpg.Connection, event: Event[Any]) -> tuple[StoredOutput, ...]:
        """The outputs another delivery already stored (read in a statement of its own: a fresh snapshot)."""
        rows = await db.fetchval(
            "SELECT outputs FROM checkpoints WHERE event_id = $1 AND stage = $2", event.event_id, self.stage
        )
        return _outputs(rows or [])

    async def failed(self, event_id: uuid.UUID, error: str) -> None:
        await self.pool.execute(
            "UPDATE checkpoints SET last_error = $3 WHERE event_id = $1 AND stage = $2",
            event_id,
            self.stage,
            error[:4000],
        )

    async def dead(self, event_id: uuid.UUID, reason: str) -> None:
        await self.pool.execute(
            """UPDATE checkpoints SET status = 'dead', last_error = $3, finished_at = now()
               WHERE event_id = $1 AND stage = $2""",
            event_id,
            self.stage,
            reason[:4000],
        )

    async def get(self, event_id: uuid.UUID) -> Checkpoint | None:
        """What is known of `event_id` at this stage (None when no delivery reached `begin`)."""
        row = await self.pool.fetchrow(
            "SELECT status, attempts, outputs, last_error FROM checkpoints WHERE event_id = $1 AND stage = $2",
            event_id,
            self.stage,
        )
        return None if row is None else _checkpoint(row)

    async def last_error(self, event_id: uuid.UUID) -> str | None:
        value: str | None = await self.pool.fetchval(
            "SELECT last_error FROM checkpoints WHERE event_id = $1 AND stage = $2", event_id, self.stage
        )
        return value

"""The outbox protocol on Postgres (PgOutbox, migration 0010): the checks of tests/unit/test_outbox.py on the real
table, plus what only the table can show (one row per key, the state constraint)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from services.notifier.adapters import PgOutbox
from services.notifier.outbox import Remote
from services.notifier.ports import Outbox
from tests.unit.test_outbox import CHECKS, check_crash_after_the_call_is_found_remotely

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
async def test_outbox_protocol_on_postgres(pool: asyncpg.Pool, check: Callable[[Outbox], Awaitable[None]]) -> None:
    await check(PgOutbox(pool))


async def test_crash_after_the_call_is_found_remotely_on_postgres(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await check_crash_after_the_call_is_found_remotely(PgOutbox(pool), monkeypatch)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_one_row_per_key_and_states_are_checked(pool: asyncpg.Pool) -> None:
    outbox, incident = PgOutbox(pool), uuid.uuid4()
    for _ in range(3):
        await outbox.begin(incident, "linear.issue", "ENG")
    await outbox.done(incident, "linear.issue", "ENG", Remote(id="abc", url="https://linear.test/ENG-1"))
    await outbox.begin(incident, "linear.issue", "ENG")  # after done: no new attempt, state kept
    row = await pool.fetchrow(
        "SELECT state, attempts, remote_url, done_at FROM outbox WHERE incident_id = $1", incident
    )
    assert (row["state"], row["attempts"], row["remote_url"]) == ("done", 3, "https://linear.test/ENG-1")
    assert row["done_at"] is not None
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("UPDATE outbox SET state = 'maybe' WHERE incident_id = $1", incident)

"""The notifier's pull request record on Postgres: an intent row before the push, completed once after it."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg
import pytest

from services.notifier.adapters import PgPullRequests
from services.notifier.domain import PullRequest

pytestmark = pytest.mark.integration

INTENT = PullRequest(repo="shop", provider="local", branch="pagerpatch/x", head_commit="", title="t", body="", url="")


async def test_intent_then_record_then_a_late_record_changes_nothing(pool: asyncpg.Pool) -> None:
    prs = PgPullRequests(pool)
    incident = uuid.uuid4()
    await prs.intend(incident, INTENT)
    await prs.intend(incident, INTENT)  # a retry of the intent adds nothing
    row = await pool.fetchrow("SELECT state, head_commit, url FROM pull_requests WHERE incident_id = $1", incident)
    assert dict(row) == {"state": "pushing", "head_commit": "", "url": ""}

    pushed = dataclasses.replace(INTENT, head_commit="a" * 40, url="file:///r?branch=pagerpatch/x")
    await prs.record(incident, pushed)
    await prs.record(incident, dataclasses.replace(pushed, head_commit="b" * 40))  # the completed record is kept
    row = await pool.fetchrow("SELECT state, head_commit, url FROM pull_requests WHERE incident_id = $1", incident)
    assert dict(row) == {"state": "open", "head_commit": "a" * 40, "url": "file:///r?branch=pagerpatch/x"}
    assert await pool.fetchval("SELECT count(*) FROM pull_requests") == 1


async def test_record_without_intent_still_records(pool: asyncpg.Pool) -> None:
    prs = PgPullRequests(pool)
    incident = uuid.uuid4()
    await prs.record(incident, dataclasses.replace(INTENT, head_commit="c" * 40, url="u"))
    assert await pool.fetchval("SELECT state FROM pull_requests WHERE incident_id = $1", incident) == "open"

"""Triage's incident statements composed with its own SQL (pagerpatch.incidents.grouping): numbering and guards."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from pagerpatch.incidents import grouping
from pagerpatch.incidents.state import TERMINAL
from services.triage import adapters


def placeholders(sql: str) -> set[int]:
    return {int(n) for n in re.findall(r"\$(\d+)", sql)}


def test_a_composed_read_numbers_its_parameters_after_the_callers() -> None:
    read = grouping.compose_read("SELECT x FROM t WHERE id = $1", "SELECT $2::int", caller_params=2)
    assert placeholders(read.sql) == {1, 2, 3, 4, 5, 6, 7, 8}
    assert "$3::text" in read.sql and "$6::boolean" in read.sql  # group key first, then the history switch
    assert "$7::text" in read.sql and "$8::boolean" in read.sql  # the alias group, then the link switch
    assert "FROM (SELECT x FROM t WHERE id = $1) o" in read.sql


def test_the_live_lookup_spells_out_the_terminal_states_like_the_unique_index() -> None:
    read = grouping.compose_read("SELECT 1", "SELECT 1", caller_params=0)
    assert "state NOT IN ('resolved', 'rejected', 'failed', 'pr_closed')" in read.sql
    assert TERMINAL == ("resolved", "rejected", "failed", "pr_closed")  # the migration's index predicate


def test_a_composed_read_reads_members_only_with_a_live_incident_and_names_its_columns() -> None:
    read = grouping.compose_read("SELECT 1", "SELECT 2", caller_params=0, members="SELECT {live_opened_at}, {live_id}")
    assert "SELECT (SELECT opened_at FROM live), (SELECT id FROM live)" in read.sql
    assert "CASE WHEN EXISTS (SELECT 1 FROM live)" in read.sql
    plain = grouping.compose_read("SELECT 1", "SELECT 2", caller_params=0)
    assert "SELECT NULL" in plain.sql  # no members query: the column is null


def test_a_composed_duplicate_wraps_the_callers_insert_as_its_first_step() -> None:
    dup = grouping.compose_duplicate("INSERT INTO t VALUES ($1) RETURNING 1", caller_params=1)
    assert placeholders(dup.sql) == {1, 2, 3, 4, 5, 6}
    assert dup.sql.index("INSERT INTO t VALUES ($1) RETURNING 1") < dup.sql.index("INSERT INTO incident_events")


def test_triages_statements_use_every_parameter_once_composed() -> None:
    assert placeholders(adapters._LOAD.sql) == set(range(1, 12))
    assert placeholders(adapters._RECORD_DUPLICATE.sql) == set(range(1, 18))
    own = (adapters._PRIOR_OBSERVATION, adapters._HISTORY, adapters._MEMBERS, adapters._LINK, adapters._RECORD,
           adapters._PRUNE)  # fmt: skip
    for sql in own:
        assert "incidents" not in sql and "incident_events" not in sql  # incident SQL lives in grouping only


class Unreachable:
    """A connection that must not be used: the argument check comes first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the connection was used ({name})")


async def test_a_wrong_number_of_caller_arguments_fails_before_any_round_trip() -> None:
    with pytest.raises(ValueError, match="takes 5 caller arguments, got 3"):
        await grouping.read_group(
            Unreachable(), adapters._LOAD, (1, 2, 3), group_key="g", incident_id=uuid.uuid4(),
            absorbed_since=datetime.now(UTC), read_history=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="takes 12 caller arguments, got 0"):
        await grouping.count_duplicate(
            Unreachable(), adapters._RECORD_DUPLICATE, (), event_id=uuid.uuid4(), incident_id=uuid.uuid4(),
            occurred_at=datetime.now(UTC), summary="firing: x", firing=True,
        )  # fmt: skip

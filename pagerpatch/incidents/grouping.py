"""Triage's statements on incidents: read a group's incidents, open one, count a duplicate, close one on resolution,
reopen one it closed, raise one's severity.

Each function runs on the caller's connection, so it joins triage's transaction (where the group's lock is held).
Two of triage's steps also touch its own table (alert_observations) and must stay one round trip each — the read
before a decision and the duplicate count of an alert storm — so triage hands its SQL in and the statement is
composed here, once (`compose_read`, `compose_duplicate`), and executed by `read_group` / `count_duplicate`.
Composed statements number the caller's parameters first ($1..$n), then this module's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from pagerpatch.incidents.state import CLOSABLE, TERMINAL

# Spelled out as literals, not a parameter: only then does the planner match the predicate of the partial unique
# index incidents_one_live_per_fingerprint (one live incident per group), which this lookup relies on.
_TERMINAL_SQL = "(" + ", ".join(f"'{state}'" for state in TERMINAL) + ")"

# The group's live incident, the incident this alert would open (present when a re-run finds it), the caller's
# earlier observation of this alert joined to its incident, and the caller's history — which is skipped when a live
# incident seen since `absorbed_since` absorbs a firing alert anyway, so a storm's duplicates read almost nothing.
# The live incident may also be the alias group's, or the one the caller's link points to (`follow_link`).
_READ = """
WITH live AS (
    SELECT id, fingerprint, last_seen_at, occurrences, severity, state, opened_at FROM incidents
    WHERE (fingerprint = {group_key} OR fingerprint = {alias}
           OR id = CASE WHEN {follow_link} THEN ({link}) END)
      AND state NOT IN {terminal}
    ORDER BY last_seen_at DESC LIMIT 1
)
SELECT
  (SELECT row_to_json(x) FROM (
      SELECT o.*, i.repo, i.occurrences FROM ({prior}) o LEFT JOIN incidents i ON i.id = o.incident_id) x) AS prior,
  (SELECT row_to_json(x) FROM (
      SELECT id, severity, repo, reasons, occurrences FROM incidents WHERE id = {incident_id}) x) AS opened,
  (SELECT row_to_json(live) FROM live) AS live,
  CASE WHEN {read_history} OR NOT EXISTS (SELECT 1 FROM live WHERE last_seen_at >= {absorbed_since}) THEN
    ({history})
  END AS history,
  CASE WHEN EXISTS (SELECT 1 FROM live) AND ({read_history} OR NOT EXISTS (
      SELECT 1 FROM live WHERE last_seen_at >= {absorbed_since})) THEN
    ({members})
  END AS members
"""

# The caller's observation insert first; only when it recorded something new does the alert join the incident's
# timeline, and only a new timeline row of a firing alert counts an occurrence (a re-run counts nothing twice).
_DUPLICATE = """
WITH observed AS (
    {observation}
), timeline AS (
    INSERT INTO incident_events (event_id, incident_id, type, source, occurred_at, summary)
    SELECT {event_id}, {incident_id}, 'alert.received', 'ingest', {occurred_at}, {summary}
    WHERE EXISTS (SELECT 1 FROM observed)
    ON CONFLICT (event_id) DO NOTHING RETURNING 1
), counted AS (
    UPDATE incidents SET occurrences = occurrences + 1, last_seen_at = greatest(last_seen_at, {occurred_at}),
        updated_at = now()
    WHERE id = {incident_id} AND {firing} AND EXISTS (SELECT 1 FROM timeline) RETURNING occurrences
)
SELECT coalesce((SELECT occurrences FROM counted), (SELECT occurrences FROM incidents WHERE id = {incident_id}), 1)
"""

_OPEN = """
INSERT INTO incidents (id, fingerprint, state, title, service, severity, repo, team, reasons, opened_at, last_seen_at)
VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $9, $9)
ON CONFLICT DO NOTHING RETURNING id
"""

_CLOSE = """
UPDATE incidents SET state = 'resolved', closed_at = now(), updated_at = now(), outcome = $2
WHERE id = $1 AND state = ANY($3::text[]) RETURNING 1
"""

# Back to where the pipeline had it when triage closed it (diagnosed if a diagnosis is on its timeline), unless it
# was closed by something else or its group has a live incident again.
_REOPEN = f"""
UPDATE incidents i SET state = CASE WHEN EXISTS (
        SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.type = 'diagnosis.ready')
    THEN 'diagnosed' ELSE 'open' END,
    closed_at = NULL, outcome = NULL, updated_at = now()
WHERE i.id = $1 AND i.state = 'resolved' AND left(i.outcome, length($2)) = $2
  AND NOT EXISTS (SELECT 1 FROM incidents l WHERE l.fingerprint = i.fingerprint AND l.state NOT IN {_TERMINAL_SQL})
RETURNING 1
"""

# Severities are P0..P3, most urgent first, so the text order is the urgency order.
_RAISE = "UPDATE incidents SET severity = $2, updated_at = now() WHERE id = $1 AND severity > $2 RETURNING 1"


@dataclass(frozen=True)
class GroupRead:
    """Composed once from the caller's two queries: `prior` (its earlier observation of this alert, with an
    `incident_id` column) and `history` (one value: the group's recent observations)."""

    sql: str
    caller_params: int


@dataclass(frozen=True)
class DuplicateCount:
    """Composed once from the caller's observation insert (a data-modifying statement returning a row only when
    it recorded something new, e.g. `INSERT ... ON CONFLICT DO NOTHING RETURNING 1`)."""

    sql: str
    caller_params: int


@dataclass(frozen=True)
class GroupState:
    """A group as triage reads it: JSON objects, None when absent; `history` is the caller's value, None when
    skipped."""

    prior: dict[str, Any] | None  # the caller's observation columns, plus the incident's `repo` and `occurrences`
    opened: dict[str, Any] | None  # id, severity, repo, reasons, occurrences of the incident this alert would open
    live: dict[str, Any] | None  # id, fingerprint, last_seen_at, occurrences, severity, state, opened_at
    history: Any
    members: Any = None  # the caller's value for the live incident (read with the history), None when skipped


def _numbered(names: Sequence[str], after: int) -> dict[str, str]:
    """This module's placeholders, numbered after the caller's."""
    return {name: f"${after + i}" for i, name in enumerate(names, start=1)}


def compose_read(
    prior: str, history: str, caller_params: int, members: str = "SELECT NULL", link: str = "SELECT NULL::uuid"
) -> GroupRead:
    """The one-round-trip read before a decision; see `read_group`. `members` (one value, read with the history when
    the group has a live incident) may name the live incident's columns as `{live_id}` and `{live_opened_at}`;
    `link` (one incident id, read only when asked) is an incident another group's alert pointed this group to."""
    p = _numbered(("group_key", "incident_id", "absorbed_since", "read_history", "alias", "follow_link"), caller_params)
    sql = _READ.format(
        prior=prior,
        history=history,
        link=link,
        alias=f"{p['alias']}::text",
        follow_link=f"{p['follow_link']}::boolean",
        members=members.replace("{live_id}", "(SELECT id FROM live)").replace(
            "{live_opened_at}", "(SELECT opened_at FROM live)"
        ),
        terminal=_TERMINAL_SQL,
        group_key=f"{p['group_key']}::text",
        incident_id=f"{p['incident_id']}::uuid",
        absorbed_since=f"{p['absorbed_since']}::timestamptz",
        read_history=f"{p['read_history']}::boolean",
    )
    return GroupRead(sql, caller_params)


def compose_duplicate(observation: str, caller_params: int) -> DuplicateCount:
    """The one-round-trip write of a duplicate; see `count_duplicate`."""
    p = _numbered(("event_id", "incident_id", "occurred_at", "summary", "firing"), caller_params)
    sql = _DUPLICATE.format(
        observation=observation,
        event_id=f"{p['event_id']}::uuid",
        incident_id=f"{p['incident_id']}::uuid",
        occurred_at=f"{p['occurred_at']}::timestamptz",
        summary=f"{p['summary']}::text",
        firing=f"{p['firing']}::boolean",
    )
    return DuplicateCount(sql, caller_params)


def _checked(args: Sequence[Any], expected: int) -> Sequence[Any]:
    if len(args) != expected:
        raise ValueError(f"the composed statement takes {expected} caller arguments, got {len(args)}")
    return args


def _object(value: Any) -> dict[str, Any] | None:
    decoded = json.loads(value) if isinstance(value, str) else value
    return dict(decoded) if decoded is not None else None


async def read_group(
    conn: asyncpg.Connection,
    statement: GroupRead,
    caller_args: Sequence[Any],
    *,
    group_key: str,
    incident_id: uuid.UUID,
    absorbed_since: datetime,
    read_history: bool,
    alias: str | None = None,
    follow_link: bool = False,
) -> GroupState:
    """The group's live incident (or the alias group's, or the linked one when `follow_link`), the incident
    `incident_id` if it exists, the caller's prior observation joined to its incident, and the caller's history
    unless a live incident seen since `absorbed_since` makes it moot (`read_history` forces it, e.g. for a
    resolution)."""
    args = _checked(caller_args, statement.caller_params)
    row = await conn.fetchrow(
        statement.sql, *args, group_key, incident_id, absorbed_since, read_history, alias, follow_link
    )
    if row is None:  # pragma: no cover - a SELECT without FROM always returns its one row
        raise RuntimeError("the group read returned no row")
    return GroupState(
        _object(row["prior"]), _object(row["opened"]), _object(row["live"]), row["history"], row["members"]
    )


async def count_duplicate(
    conn: asyncpg.Connection,
    statement: DuplicateCount,
    caller_args: Sequence[Any],
    *,
    event_id: uuid.UUID,
    incident_id: uuid.UUID,
    occurred_at: datetime,
    summary: str,
    firing: bool,
) -> int:
    """Record the caller's observation, and when it is new add it to the incident's timeline and (firing only)
    count an occurrence; returns the incident's occurrences (1 when it is gone)."""
    args = _checked(caller_args, statement.caller_params)
    value = await conn.fetchval(statement.sql, *args, event_id, incident_id, occurred_at, summary, firing)
    return int(value)


async def open_incident(
    conn: asyncpg.Connection,
    *,
    incident_id: uuid.UUID,
    group_key: str,
    title: str,
    service: str,
    severity: str,
    repo: str | None,
    team: str | None,
    reasons: Sequence[str],
    opened_at: datetime,
) -> bool:
    """Open the group's incident; False when it exists already or the group has a live one (the unique index)."""
    row = await conn.fetchrow(
        _OPEN, incident_id, group_key, title, service, severity, repo, team, list(reasons), opened_at
    )
    return row is not None


async def reopen_incident(conn: asyncpg.Connection, incident_id: uuid.UUID, closed_as: str) -> bool:
    """Reopen an incident triage closed (its outcome starts with `closed_as`) when its group has no live incident;
    False when it is gone, was closed otherwise, or the group moved on."""
    done = await conn.fetchval(_REOPEN, incident_id, closed_as)
    return bool(done)


async def raise_severity(conn: asyncpg.Connection, incident_id: uuid.UUID, severity: str) -> bool:
    """Make an incident at least as urgent as `severity` (P0..P3); False when it already was (or is gone)."""
    done = await conn.fetchval(_RAISE, incident_id, severity)
    return bool(done)


async def close_incident(conn: asyncpg.Connection, incident_id: uuid.UUID, outcome: str) -> bool:
    """Resolve an incident nothing downstream has produced a fix for yet (state.CLOSABLE); False otherwise."""
    done = await conn.fetchval(_CLOSE, incident_id, outcome, sorted(CLOSABLE))
    return bool(done)

"""What was recorded about an incident (read only): its alerts as they arrived (from the events stream), the
events every stage published for it (their checkpoints keep them whole) and what its model calls cost.

An incident's alerts are the ones triage attached to it, plus its group's alerts attached to no incident in the
hour before it opened (an open-after-N rule counts those). Their bodies are read back from the stream by event
id (`Nats-Msg-Id`); an alert the stream no longer holds (past its max age) is rebuilt from the incident.opened
event that carried it on, and the replay says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from pagerpatch.incidents import IncidentRepository, IncidentView
from schemas import streams, subjects
from schemas.codec import decode
from schemas.envelope import Event
from schemas.events import AlertReceived, AlertReceivedPayload, IncidentOpened

BEFORE_OPENING = timedelta(hours=1)  # the group's unattached alerts this long before the incident opened
SEARCH_FROM = timedelta(hours=1)  # the stream is searched from this long before the first alert was triaged
MAX_ALERTS = 500
READ_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Recording:
    incident: IncidentView
    alerts: tuple[AlertReceived, ...]
    outputs: tuple[Event[Any], ...]
    cost_usd: float
    notes: tuple[str, ...] = ()


async def _has_table(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


async def alert_ids(conn: asyncpg.Connection, inc: IncidentView) -> list[tuple[uuid.UUID, datetime]]:
    """The incident's alerts (event id, when triage recorded it), in the order they happened."""
    if not await _has_table(conn, "alert_observations"):
        return []
    rows = await conn.fetch(
        """SELECT event_id, recorded_at FROM alert_observations
           WHERE NOT ('link' = ANY(rules)) AND (incident_id = $1
              OR (incident_id IS NULL AND group_key = $2 AND observed_at BETWEEN $3 AND $4))
           ORDER BY observed_at, recorded_at LIMIT $5""",
        inc.id, inc.fingerprint, inc.opened_at - BEFORE_OPENING, inc.opened_at, MAX_ALERTS,
    )  # fmt: skip
    return [(r["event_id"], r["recorded_at"]) for r in rows]


async def stage_outputs(conn: asyncpg.Connection, incident_id: uuid.UUID, alerts: Sequence[uuid.UUID]) -> list[Any]:
    """The events the stages published for the incident (triage's through its alerts' checkpoints), in order."""
    rows = await conn.fetch(
        """SELECT outputs FROM checkpoints WHERE status = 'done'
              AND (incident_id = $1 OR (stage = 'triage' AND event_id = ANY($2::uuid[])))
           ORDER BY finished_at, event_id""",
        incident_id, list(alerts),
    )  # fmt: skip
    events: dict[str, Event[Any]] = {}
    for row in rows:
        for output in row["outputs"]:
            try:
                event = decode(output["data"])
            except ValueError:  # a type this version does not know: not part of the comparison
                continue
            if event.incident_id == incident_id:
                events.setdefault(output["event_id"], event)
    return sorted(events.values(), key=lambda e: e.occurred_at)


async def recorded_cost(conn: asyncpg.Connection, incident_id: uuid.UUID) -> float:
    """What the incident's model calls cost (the ledger), 0 without one."""
    if not await _has_table(conn, "llm_calls"):
        return 0.0
    return float(await conn.fetchval("SELECT coalesce(sum(cost_usd), 0) FROM llm_calls WHERE incident_id = $1",
                                     incident_id))  # fmt: skip


async def find_on_stream(
    js: JetStreamContext, subject: str, wanted: set[str], since: datetime | None, until_seq: int | None = None
) -> tuple[dict[str, bytes], int | None]:
    """The messages on `subject` whose `Nats-Msg-Id` is in `wanted`, read from `since` (None: the beginning) until
    all are found, the stream ends or sequence `until_seq` is reached; and the first sequence read."""
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since) if since else None
    sub = await js.subscribe(subject, stream=streams.EVENTS_STREAM, ordered_consumer=True, config=config)
    found: dict[str, bytes] = {}
    first: int | None = None
    try:
        info = await sub.consumer_info()
        if info.num_pending == 0 and not (info.delivered and info.delivered.consumer_seq):
            return found, None  # nothing on the subject since then (neither waiting nor already sent to us)
        while len(found) < len(wanted):
            try:
                msg = await sub.next_msg(timeout=READ_TIMEOUT_S)
            except NatsTimeout:
                break
            seq = msg.metadata.sequence.stream
            first = seq if first is None else first
            if until_seq is not None and seq >= until_seq:
                break
            msg_id = (msg.headers or {}).get("Nats-Msg-Id")
            if msg_id in wanted:
                found[msg_id] = msg.data
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found, first


def rebuilt_alert(alert_id: uuid.UUID, opened: IncidentOpened) -> AlertReceived:
    """The alert an incident.opened carried on (what triage read of it), when the stream no longer has it."""
    p = opened.payload
    payload = AlertReceivedPayload(
        source="replay", service=p.service, title=p.title, description=p.description, stack_trace=p.stack_trace,
        commit=p.commit, labels=dict(p.labels), frame_vars=list(p.frame_vars),
    )  # fmt: skip
    return AlertReceived.create(payload, source="replay", event_id=alert_id, occurred_at=opened.occurred_at,
                                team=opened.team)  # fmt: skip


async def read_alerts(
    js: JetStreamContext, ids: Sequence[tuple[uuid.UUID, datetime]], outputs: Sequence[Event[Any]]
) -> tuple[list[AlertReceived], list[str]]:
    """The alerts' bodies from the stream (rebuilt from incident.opened when gone), and notes on what was not found."""
    if not ids:
        return [], ["no alert of this incident is recorded (alert_observations): nothing to replay"]
    wanted = {str(i) for i, _ in ids}
    since = min(at for _, at in ids) - SEARCH_FROM
    found, first = await find_on_stream(js, subjects.ALERT_RECEIVED, wanted, since)
    if len(found) < len(wanted):  # published long before it was triaged (an outage): look from the beginning
        more, _ = await find_on_stream(js, subjects.ALERT_RECEIVED, wanted - set(found), None, first)
        found.update(more)
    opened = {e.causation_id: e for e in outputs if isinstance(e, IncidentOpened)}
    alerts: list[AlertReceived] = []
    notes: list[str] = []
    lost = 0
    for alert_id, _ in ids:
        data = found.get(str(alert_id))
        if data is not None:
            event = decode(data)
            if isinstance(event, AlertReceived):
                alerts.append(event)
                continue
        if alert_id in opened:
            alerts.append(rebuilt_alert(alert_id, opened[alert_id]))
            notes.append(f"alert {alert_id} is no longer on the stream: rebuilt from incident.opened "
                         "(its source, severity hint and fingerprint are lost)")  # fmt: skip
        else:
            lost += 1
    if lost:
        notes.append(f"{lost} alert(s) of the incident are no longer on the stream: left out of the replay")
    return alerts, notes


async def load_recording(conn: asyncpg.Connection, js: JetStreamContext, incident: str) -> Recording | None:
    """Everything recorded about the incident named by id or unambiguous prefix; None when none matches."""
    inc = await IncidentRepository(conn).find(incident)
    if inc is None:
        return None
    ids = await alert_ids(conn, inc)
    outputs = await stage_outputs(conn, inc.id, [i for i, _ in ids])
    alerts, notes = await read_alerts(js, ids, outputs)
    return Recording(inc, tuple(alerts), tuple(outputs), await recorded_cost(conn, inc.id), tuple(notes))

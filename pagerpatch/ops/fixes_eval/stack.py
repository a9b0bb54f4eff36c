"""`pagerpatch eval fixes --stack`: the scenarios' alerts through an embedded stack of their own, over the bus.

The stack lives in `<PAGERPATCH_HOME>/eval-fixes` (its own NATS, Postgres and state, never a running `pagerpatch up`
or a configured database), started and stopped with `runner.Stack` as `pagerpatch demo` does; its output goes to
`stack.log` there. All alerts are posted to ingest at once and followed together, each with its own deadline; what
the pipeline did is read from the events stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from pagerpatch.git import repos
from pagerpatch.incidents import IncidentRepository
from pagerpatch.kernel import bus, store
from pagerpatch.ops import endpoints, webhooks
from pagerpatch.ops.fixes_eval.history import BuiltScenario
from pagerpatch.ops.fixes_eval.outcome import DONE_STATES, FINAL_EVENT
from pagerpatch.ops.fixes_eval.tracked import Tracked, importable
from pagerpatch.ops.runner import Stack
from pagerpatch.settings import Settings
from schemas import codec, streams, subjects
from schemas.envelope import Event

__all__ = ["EvalError", "EventLog", "through_the_stack"]

log = logging.getLogger(__name__)

FINAL_EVENT_GRACE_S = 10.0  # an incident's state is stored before the event that set it is on the stream
POLL_S = 0.3

Say = Callable[[str], None]


class EvalError(Exception):
    """The evaluation could not run (the stack did not start); the message says why and where to look."""


class EventLog:
    """Every pipeline event published while the evaluation runs (subscribed before the first alert is posted)."""

    def __init__(self) -> None:
        self.events: list[Event[Any]] = []
        self._nc: NatsClient | None = None

    async def start(self, nats_url: str) -> None:
        self._nc = await bus.connect(nats_url, "pagerpatch-eval-fixes")
        await self._nc.jetstream().subscribe(subjects.ALL_EVENTS, stream=streams.EVENTS_STREAM, cb=self._received,
                                             ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)  # fmt: skip

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.drain()

    async def _received(self, msg: Msg) -> None:
        try:
            self.events.append(codec.decode(msg.data))
        except ValueError as exc:  # an event this version cannot read says nothing about the scenarios
            log.warning("eval fixes: unreadable event on %s: %s", msg.subject, exc)

    def incident_of(self, alert_event: uuid.UUID) -> uuid.UUID | None:
        """The incident triage opened for the alert (None: not yet, or never)."""
        return next((e.incident_id for e in self.events if e.type == "incident.opened"
                     and e.causation_id == alert_event), None)  # fmt: skip

    def suppressed(self, alert_event: uuid.UUID) -> bool:
        return any(e.type == "alert.suppressed" and e.causation_id == alert_event for e in self.events)

    def of_incident(self, incident_id: uuid.UUID) -> list[Event[Any]]:
        return [e for e in self.events if e.incident_id == incident_id]


async def through_the_stack(
    settings: Settings, home: Path, built: Sequence[BuiltScenario], run: str, timeout_s: float, probe: Path | None,
    say: Say,
) -> list[Tracked]:  # fmt: skip
    """Start the stack, post every alert, follow them until done or out of time, and stop the stack again."""
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    log_path = home / "stack.log"
    say(f"== starting an embedded stack in {home} (its output goes to {log_path})")
    stack = Stack(settings.model_copy(update={"home": home, "nats_url": None, "database_url": None, "ingest_port": 0}))
    events = EventLog()
    with log_path.open("w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
        try:
            try:
                with importable(probe):
                    ep = await stack.start()
            except Exception as exc:
                raise EvalError(f"could not start pagerpatch: {exc} (see {log_path})") from exc
            await events.start(ep.nats_url)
            async with store.connection(ep.database_url) as conn:
                for b in built:
                    await repos.register(conn, b.repo_config())
            tracked = await _post_all(settings, ep, built, run, say)
            await _follow(ep, events, tracked, timeout_s, say)
            for t in tracked:
                t.events = events.of_incident(t.incident) if t.incident else []
            return tracked
        finally:
            await events.stop()
            await stack.stop()


async def _post_all(
    settings: Settings, ep: endpoints.Endpoints, built: Sequence[BuiltScenario], run: str, say: Say
) -> list[Tracked]:
    tracked: list[Tracked] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for b in built:
            body = json.dumps(b.alert(run)).encode()
            delivery = f"eval-fixes-{run}-{b.scenario.name}"
            headers = {"content-type": "application/json", "x-pagerpatch-delivery": delivery,
                       **webhooks.generic_signature_headers(settings, body)}  # fmt: skip
            resp = await client.post(f"{ep.ingest_url}/webhooks/generic", content=body, headers=headers)
            if resp.status_code != 202:
                problem = f"ingest refused the alert: {resp.status_code} {resp.text[:200]}"
                tracked.append(Tracked(b, None, time.monotonic(), problem, finished_at=time.monotonic()))
                say(f"   {b.scenario.label}: {problem}")
                continue
            tracked.append(Tracked(b, uuid.UUID(resp.json()["event_id"]), time.monotonic()))
    say(f"== {sum(1 for t in tracked if t.alert)} alert(s) accepted by ingest; following them")
    return tracked


async def _follow(
    ep: endpoints.Endpoints, events: EventLog, tracked: Sequence[Tracked], timeout_s: float, say: Say
) -> None:
    """Poll each incident's state until it is done (and its final event arrived) or its deadline passed."""
    async with store.connection(ep.database_url) as conn:
        incidents = IncidentRepository(conn)
        while any(t.finished_at is None for t in tracked):
            for t in tracked:
                if t.finished_at is None:
                    await _step(t, incidents, events, timeout_s)
                    if t.finished_at is not None:
                        s = t.built.scenario
                        how = t.problem or t.state
                        say(f"   {s.label}: {how} after {t.finished_at - t.posted_at:.1f}s")
            await asyncio.sleep(POLL_S)


async def _step(t: Tracked, incidents: IncidentRepository, events: EventLog, timeout_s: float) -> None:
    now = time.monotonic()
    late = now - t.posted_at > timeout_s
    assert t.alert is not None  # refused alerts are finished when posted
    t.incident = t.incident or events.incident_of(t.alert)
    if t.incident is None:
        if events.suppressed(t.alert):
            t.problem, t.finished_at = "triage suppressed the alert", now
        elif late:
            t.problem, t.finished_at = f"no incident opened within {timeout_s:.0f}s", now
        return
    t.state = await incidents.state(t.incident) or ""
    if t.state in DONE_STATES:
        t.done_at = t.done_at or now
        final = FINAL_EVENT.get(t.state)
        arrived = final is None or any(e.type == final for e in events.of_incident(t.incident))
        if arrived or now - t.done_at > FINAL_EVENT_GRACE_S:
            t.finished_at = now
    elif late:
        t.problem, t.finished_at = f"still {t.state or 'unknown'} after {timeout_s:.0f}s", now

"""The console's use cases and pages on in-memory ports: the decision rules, the live tail's frames, and pages that
escape whatever the events carry."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from pagerpatch.incidents import IncidentView
from pagerpatch.settings.console import ConsoleSettings
from schemas.events import AlertReceived, AlertReceivedPayload
from services.console import incident_page, templates, usecase
from services.console.domain import Access, IncidentFilter
from services.console.memory import MemoryConsoleStore, MemoryEventBus, MemoryRuntime
from services.console.ports import ApprovalRow, IncidentRecord, IncidentRow
from services.console.usecase import ConsoleDeps

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DANA = Access(True, "dana")


def deps(store: MemoryConsoleStore, bus: MemoryEventBus | None = None) -> ConsoleDeps:
    cfg = ConsoleSettings(approvers={"dana": "d-secret"})  # type: ignore[arg-type]
    return ConsoleDeps(cfg, store, bus or MemoryEventBus(), MemoryRuntime(), clock=lambda: NOW)


def record(state: str = "awaiting_approval", approval: str | None = "pending", title: str = "boom") -> IncidentRecord:
    inc = IncidentView(uuid.uuid4(), "fp", state, title, "checkout", "P1", "shop", 1, ["why"], NOW, NOW, None)
    row = ApprovalRow(approval, uuid.uuid4(), requested_at=NOW) if approval else None
    return IncidentRecord(incident=inc, team="payments", approval=row)


async def test_only_an_approver_decides_and_only_a_pending_approval() -> None:
    store = MemoryConsoleStore()
    rec = record()
    store.records[rec.incident.id] = rec
    bus = MemoryEventBus()
    d = deps(store, bus)
    ref = str(rec.incident.id)
    assert (await usecase.decide(d, ref, "approve", "", Access(False))).status == 401
    assert (await usecase.decide(d, ref, "approve", "", Access(True))).status == 403
    assert (await usecase.decide(d, "nope", "approve", "", DANA)).status == 404
    assert bus.published == [] and store.audits == []

    first = await usecase.decide(d, ref, "approve", "ok", DANA)
    second = await usecase.decide(d, ref, "reject", "changed my mind", DANA)
    assert (first.status, first.duplicate, second.status, second.duplicate) == (202, False, 200, True)
    assert first.event_id == second.event_id  # one decision per approval request
    [event] = bus.published
    assert (event.type, event.payload.decision, event.payload.channel, event.payload.decided_by) == (
        "approval.decided", "approve", "api", "dana")  # fmt: skip
    assert rec.approval is not None and event.causation_id == rec.approval.request_event_id
    assert [a["action"] for a in store.audits] == ["console.approve", "console.reject"]

    for state, status in (("failed", None), ("approved", "approved")):
        other = record(state, status)
        store.records[other.incident.id] = other
        refused = await usecase.decide(d, str(other.incident.id), "approve", "", DANA)
        assert refused.status == 409 and (state in refused.message or "already approved" in refused.message)


async def test_the_live_tail_sends_one_frame_per_event_and_keepalives() -> None:
    bus = MemoryEventBus()
    d = deps(MemoryConsoleStore(), bus)
    old = AlertReceived.create(AlertReceivedPayload(source="generic", service="s", title="old one"), source="t")
    await bus.publish(old)
    frames = usecase.live_events(d, "pagerpatch.>", backlog=10, keepalive_s=0.05)
    first = await anext(frames)
    assert first.startswith("id: 1\nevent: pagerpatch\ndata: ") and first.endswith("\n\n")
    assert json.loads(first.split("data: ", 1)[1])["summary"] == "old one"
    assert await anext(frames) == ": keepalive\n\n"
    new = AlertReceived.create(AlertReceivedPayload(source="generic", service="s", title="new one"), source="t")
    waiting = asyncio.ensure_future(anext(frames))
    await asyncio.sleep(0)
    await bus.publish(new)
    frame = await asyncio.wait_for(waiting, 2)
    while frame.startswith(":"):
        frame = await asyncio.wait_for(anext(frames), 2)
    assert json.loads(frame.split("data: ", 1)[1])["summary"] == "new one"
    await frames.aclose()


async def test_pages_escape_what_events_carry() -> None:
    store = MemoryConsoleStore()
    rec = record(title="<script>alert(1)</script>")
    store.records[rec.incident.id] = rec
    store.rows.append(IncidentRow(rec.incident.id, "open", "P1", "<b>svc</b>", None, "<img src=x>", NOW, NOW, 1,
                                  cost_usd=Decimal("0.5")))  # fmt: skip
    d = deps(store)
    listing = templates.incidents(await usecase.incidents(d, IncidentFilter()), Access(True))
    assert "<img src=x>" not in listing and "&lt;img src=x&gt;" in listing and "&lt;b&gt;svc" in listing
    view = await usecase.incident(d, str(rec.incident.id), DANA)
    assert view is not None and view.can_decide and view.csrf
    page = incident_page.incident(view, DANA)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'id="decision"' in page and f'value="{view.csrf}"' in page
    viewer = await usecase.incident(d, str(rec.incident.id), Access(True))
    assert viewer is not None and not viewer.can_decide
    assert 'id="decision"' not in incident_page.incident(viewer, Access(True))

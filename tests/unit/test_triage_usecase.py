"""The triage use case on the in-memory store: outputs, re-runs, the soft hint's place, incident closing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pagerpatch.settings import TriageSettings
from schemas.events import (
    AlertReceived,
    AlertReceivedPayload,
    AlertSuppressed,
    FrameVars,
    IncidentOpened,
    Severity,
)
from services.triage import usecase
from services.triage.domain import Decision, Hint
from services.triage.memory import MemoryTriageStore
from services.triage.ports import NoHint
from services.triage.settings import TriageConfig

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


def event(at: float = 0, **fields: Any) -> AlertReceived:
    payload: dict[str, Any] = {"source": "generic", "service": "search", "title": "search cluster red",
                               "severity_hint": "critical", "occurred_at": T0 + timedelta(seconds=at)}  # fmt: skip
    payload.update(fields)
    return AlertReceived.create(AlertReceivedPayload(**payload), source="ingest", team="discovery")


class CountingHint:
    """A model stand-in at the hint Protocol's boundary: answers a fixed verdict and counts the questions."""

    def __init__(self, verdict: Hint | None) -> None:
        self.verdict = verdict
        self.asked: list[uuid.UUID] = []

    @property
    def enabled(self) -> bool:
        return True

    async def classify(self, event: AlertReceived, decision: Decision) -> Hint | None:
        self.asked.append(event.event_id)
        return self.verdict


async def run(e: AlertReceived, store: MemoryTriageStore, hint: Any = None, **rules: Any) -> usecase.Result:
    cfg = TriageConfig(rules=TriageSettings.model_validate(rules))
    at = e.payload.occurred_at or T0
    return await usecase.triage(e, store, cfg, hint or NoHint(), at)


async def test_first_alert_opens_an_incident_and_the_next_is_a_counted_duplicate() -> None:
    store = MemoryTriageStore(repos={"search": "search-repo"})
    alert = event(0)
    first = await run(alert, store)
    [opened] = first.outputs
    assert isinstance(opened, IncidentOpened)
    assert opened.incident_id == uuid.uuid5(alert.event_id, "triage:incident")  # what ingest/e2e rely on
    assert opened.payload.severity == Severity.P1 and opened.payload.repo == "search-repo"
    assert opened.payload.reasons == list(first.decision.reasons)
    second = await run(event(30), store)
    [dup] = second.outputs
    assert isinstance(dup, AlertSuppressed)
    assert (dup.payload.reason, dup.payload.incident_id, dup.payload.occurrences) == ("duplicate",
                                                                                      opened.incident_id, 2)
    assert store.incidents[opened.incident_id].team == "discovery"


async def test_a_rerun_returns_the_same_outputs_without_counting_twice() -> None:
    store = MemoryTriageStore()
    await run(event(0), store)
    dup_event = event(10)
    once = await run(dup_event, store)
    again = await run(dup_event, store)
    assert again.replayed and [o.event_id for o in again.outputs] == [o.event_id for o in once.outputs]
    assert again.outputs[0].payload == once.outputs[0].payload
    [inc] = store.incidents.values()
    assert inc.occurrences == 2


async def test_the_hint_is_asked_only_for_undecided_alerts_and_decides_them() -> None:
    store = MemoryTriageStore()
    hint = CountingHint(Hint("noise", None, ("nightly dip",)))
    vague = event(0, severity_hint=None, title="orders processed low", kind="metric")
    result = await run(vague, store, hint)
    assert result.decision.classification == "noise" and "llm_hint" in result.decision.rules
    assert hint.asked == [vague.event_id]
    await run(event(5), store, hint)  # a critical alert: decided by the rules
    await run(event(6), store, hint)  # its duplicate
    assert hint.asked == [vague.event_id]


async def test_without_a_verdict_the_default_applies_and_says_so() -> None:
    hint = CountingHint(None)  # the model is down or over budget
    result = await run(event(0, severity_hint=None, title="orders processed low", kind="metric"),
                       MemoryTriageStore(), hint)  # fmt: skip
    assert result.decision.classification == "real"
    assert usecase.NO_VERDICT in result.decision.reasons


async def test_resolution_closes_the_incident_and_the_next_firing_reopens_after_the_flap_window() -> None:
    store = MemoryTriageStore()
    first = await run(event(0), store)
    closed = await run(event(60, status="resolved"), store)
    assert closed.decision.close and store.incidents[first.incident_id or uuid.uuid4()].state == "resolved"
    flap = await run(event(120), store)
    assert flap.decision.rules == ("flapping",)
    later = await run(event(3600), store)
    assert isinstance(later.outputs[0], IncidentOpened)
    assert len(store.incidents) == 2


async def test_a_stale_live_incident_is_superseded_by_the_new_one() -> None:
    store = MemoryTriageStore()
    old = await run(event(0), store, dedup_window_s=600)
    new = await run(event(1200), store, dedup_window_s=600)
    assert isinstance(new.outputs[0], IncidentOpened)
    assert old.incident_id is not None and new.incident_id is not None
    assert store.incidents[old.incident_id].state == "resolved"
    assert "superseded" in (store.incidents[old.incident_id].outcome or "")
    assert store.incidents[new.incident_id].state == "open"


class PruneCounter(MemoryTriageStore):
    """The in-memory store, counting the service path's history pruning."""

    def __init__(self) -> None:
        super().__init__()
        self.prunes = 0

    async def maybe_prune(self) -> int:
        self.prunes += 1
        return 0


async def test_the_service_path_triages_then_keeps_the_history_bounded() -> None:
    store = PruneCounter()
    cfg = TriageConfig(rules=TriageSettings())
    first = await usecase.handle_alert(event(0), store, cfg, NoHint(), T0)
    again = await usecase.handle_alert(event(5), store, cfg, NoHint(), T0 + timedelta(seconds=5))
    assert isinstance(first.outputs[0], IncidentOpened) and isinstance(again.outputs[0], AlertSuppressed)
    assert store.prunes == 2  # once per alert, after its decision (the store decides whether it is time)


async def test_a_resolution_leaves_an_incident_with_fix_work_open() -> None:
    store = MemoryTriageStore()
    first = await run(event(0), store)
    assert first.incident_id is not None
    store.incidents[first.incident_id].state = "fix_validated"  # downstream produced a fix for a person to look at
    resolved = await run(event(60, status="resolved"), store)
    assert not resolved.decision.close and "already fix_validated" in resolved.decision.reasons[0]
    assert store.incidents[first.incident_id].state == "fix_validated"


async def test_a_terminal_incident_no_longer_absorbs_the_group() -> None:
    store = MemoryTriageStore()
    first = await run(event(0), store)
    assert first.incident_id is not None
    store.incidents[first.incident_id].state = "pr_closed"  # terminal: the group has no live incident any more
    again = await run(event(30), store)
    assert isinstance(again.outputs[0], IncidentOpened) and again.incident_id != first.incident_id


async def test_the_incident_carries_the_alerts_frame_vars_also_when_replayed() -> None:
    frames = [
        FrameVars(file="shopcart/api.py", function="checkout", line=50, vars={"cart_id": 7}),
        FrameVars(file="shopcart/pricing.py", function="find_coupon", line=64, vars={"code": "SAVE10"}),
    ]
    store = MemoryTriageStore()
    alert = event(0, frame_vars=frames)
    first = await run(alert, store)
    [opened] = first.outputs
    assert isinstance(opened, IncidentOpened)
    assert opened.payload.frame_vars == frames  # innermost last, as the alert had them
    again = await run(alert, store)  # a redelivery replays the recorded decision
    assert again.replayed and again.outputs[0].payload == opened.payload


async def test_an_alert_without_frame_vars_opens_an_incident_without_them() -> None:
    [opened] = (await run(event(0), MemoryTriageStore())).outputs
    assert isinstance(opened, IncidentOpened) and opened.payload.frame_vars == []

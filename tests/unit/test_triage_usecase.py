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


async def test_resolution_closes_the_incident_a_quick_refire_reopens_it_and_a_late_one_opens_another() -> None:
    store = MemoryTriageStore()
    first = await run(event(0), store)
    assert first.incident_id is not None
    closed = await run(event(60, status="resolved"), store)
    assert closed.decision.close and store.incidents[first.incident_id].state == "resolved"
    refire = await run(event(120), store)
    assert (refire.decision.rules, refire.incident_id) == (("reopen",), first.incident_id)
    assert isinstance(refire.outputs[0], AlertSuppressed) and refire.outputs[0].payload.reason == "duplicate"
    assert store.incidents[first.incident_id].state == "open" and store.incidents[first.incident_id].outcome is None
    again = await run(event(180, status="resolved"), store)
    assert again.decision.close and store.incidents[first.incident_id].state == "resolved"
    later = await run(event(3600), store)
    assert isinstance(later.outputs[0], IncidentOpened)
    assert len(store.incidents) == 2


async def test_an_incident_closed_otherwise_is_not_reopened_and_the_refire_opens_a_new_one() -> None:
    store = MemoryTriageStore()
    first = await run(event(0), store)
    await run(event(60, status="resolved"), store)
    assert first.incident_id is not None
    store.incidents[first.incident_id].outcome = "pr.closed: merged"  # someone else's outcome since
    refire = await run(event(120), store)
    assert isinstance(refire.outputs[0], IncidentOpened) and refire.incident_id != first.incident_id


async def test_a_more_urgent_duplicate_raises_the_incidents_severity() -> None:
    store = MemoryTriageStore()
    first = await run(event(0, severity_hint="P3"), store)
    assert first.incident_id is not None and store.incidents[first.incident_id].severity == Severity.P3
    raised = await run(event(30, severity_hint="P1"), store)
    assert raised.decision.rules == ("dedup", "raise_severity") and raised.decision.severity == Severity.P1
    assert store.incidents[first.incident_id].severity == Severity.P1
    calmer = await run(event(60, severity_hint="P4"), store)
    assert calmer.decision.severity == Severity.P1 and store.incidents[first.incident_id].severity == Severity.P1


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


# ---------------------------------------------------------------- real alert shapes (issue 17)

SENTRY_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/payments/api.py", line 12, in quote\n'
    '  File "/srv/app/payments/fx.py", line 33, in convert\n'
    "KeyError: 'currency'\n"
)


def sentry_issue(at: float, status: str = "firing") -> AlertReceived:
    return event(at, source="sentry", service="payments", title="KeyError: 'currency'", severity_hint="error",
                 resource="payments.fx in convert", status=status,
                 fingerprint_inputs={"issue": "7301", "project": "payments"})  # fmt: skip


def sentry_event(at: float) -> AlertReceived:
    return event(at, source="sentry", service="payments", title="KeyError: 'currency'", severity_hint="error",
                 resource="payments.fx in convert", stack_trace=SENTRY_TRACE, kind="error",
                 fingerprint_inputs={"issue": "7301", "project": "payments"})  # fmt: skip


async def test_a_sentry_issue_webhook_and_its_event_are_one_incident_in_either_order() -> None:
    for first, second in ((sentry_issue(0), sentry_event(5)), (sentry_event(0), sentry_issue(5))):
        store = MemoryTriageStore()
        opened = await run(first, store)
        joined = await run(second, store)
        assert isinstance(opened.outputs[0], IncidentOpened)
        assert (joined.decision.classification, joined.incident_id) == ("duplicate", opened.incident_id)
        closed = await run(sentry_issue(600, "resolved"), store)  # the issue resolved: its one member resolved
        assert closed.decision.close and len(store.incidents) == 1


async def test_a_log_of_the_same_error_joins_the_incident_a_sentry_event_opened() -> None:
    store = MemoryTriageStore()
    opened = await run(sentry_event(0), store)
    log = await run(event(20, service="payments", title="KeyError in fx", stack_trace=SENTRY_TRACE.replace(
        "KeyError", "builtins.KeyError"), severity_hint="error"), store)  # fmt: skip
    assert (log.decision.classification, log.incident_id) == ("duplicate", opened.incident_id)


async def test_pods_firing_for_hours_keep_the_incident_open_until_the_last_resolves() -> None:
    store = MemoryTriageStore()
    pods = [f"shop/checkout-7f9c8d6b5-{i:05d}/api" for i in range(3)]
    opened = await run(event(0, resource=pods[0]), store)
    for pod in pods[1:]:
        await run(event(10, resource=pod), store)
    assert opened.incident_id is not None
    # Five hours on (past the one-hour history window), the pods resolve one by one.
    for n, pod in enumerate(pods):
        result = await run(event(5 * 3600 + n, resource=pod, status="resolved"), store)
        assert result.decision.close == (n == len(pods) - 1)
    assert store.incidents[opened.incident_id].state == "resolved"

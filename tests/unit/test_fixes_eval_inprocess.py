"""The pure parts of `eval fixes` without the bus: the scenario's generic alert becomes the very payload ingest's
generic provider makes of it, and the incident's state is the state machine's projection of the chain's events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pagerpatch.ops.fixes_eval.inprocess import alert_event, incident_state
from schemas.envelope import Event
from schemas.events import (
    AlertReceivedPayload,
    DiagnosisReady,
    FixApproved,
    FixFailed,
    FixValidated,
    IncidentOpened,
    PrOpened,
)
from services.ingest.providers.generic import GenericAlert, to_payload

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
INCIDENT = uuid.UUID("00000000-0000-4000-8000-000000000002")


def _alert(**extra: Any) -> dict[str, Any]:
    """An alert as `BuiltScenario.alert` writes it (history.py)."""
    return {
        "title": "KeyError in eval-tiny", "service": "eval-tiny", "severity": "critical",
        "description": "Unhandled KeyError: 'sku' (pagerpatch eval fixes, tiny)",
        "stack_trace": 'Traceback (most recent call last):\n  File "/srv/app/tiny/core.py", line 2, in get\n'
                       "    return d['sku']\nKeyError: 'sku'\n",
        "labels": {"env": "production", "eval": "fixes", "scenario": "tiny", "run": "r1"},
        "commit": "a" * 40, "fingerprint": "eval-fixes-tiny-r1", **extra,
    }  # fmt: skip


def _as_ingest_makes_it(alert: dict[str, Any], delivery: str) -> AlertReceivedPayload:
    return to_payload(GenericAlert.model_validate(alert), alert, delivery, AT)


def _comparable(payload: AlertReceivedPayload) -> dict[str, Any]:
    return payload.model_dump(exclude={"raw"})  # the raw body's JSON spacing is the only difference allowed


def test_the_alert_is_what_ingest_makes_of_the_generic_webhook() -> None:
    alert = _alert()
    event = alert_event(alert, delivery="eval-fixes-r1-tiny", team="payments", received_at=AT)
    assert _comparable(event.payload) == _comparable(_as_ingest_makes_it(alert, "eval-fixes-r1-tiny"))
    assert (event.type, event.source, event.team, event.incident_id) == ("alert.received", "ingest", "payments", None)
    assert (event.payload.source, event.payload.kind, event.payload.severity_hint) == ("generic", "error", "critical")
    assert event.payload.fingerprint_inputs == {"title": "KeyError in eval-tiny"}
    assert event.payload.raw is not None and "eval-fixes-tiny-r1" in event.payload.raw


def test_frame_variables_travel_and_frames_without_any_are_left_out_as_ingest_leaves_them() -> None:
    frames = [
        {"file": "/srv/app/tiny/api.py", "function": "handle", "line": 7, "vars": {}},
        {"file": "/srv/app/tiny/core.py", "function": "get", "line": 2, "vars": {"d": {"id": 3}, "n": 2}},
    ]
    alert = _alert(frame_vars=frames)
    event = alert_event(alert, delivery="d", team=None, received_at=AT)
    assert [(f.file, f.function, f.line, f.vars) for f in event.payload.frame_vars] == [
        ("/srv/app/tiny/core.py", "get", 2, {"d": {"id": 3}, "n": 2})]  # fmt: skip
    assert _comparable(event.payload) == _comparable(_as_ingest_makes_it(alert, "d"))


def test_a_huge_alert_body_is_clipped_in_raw() -> None:
    event = alert_event(_alert(description="x" * 19_000), delivery="d", team=None, received_at=AT)
    assert event.payload.raw is not None and len(event.payload.raw) == 16_384 and event.payload.raw.endswith("]")


def _chain(*types: type[Event[Any]]) -> list[Event[Any]]:
    """Events of these types for one incident (payloads do not matter to the state)."""
    kinds: list[type[Event[Any]]] = [IncidentOpened, *types]
    return [t.model_construct(type=t.TYPE, incident_id=INCIDENT, payload=None, source="test") for t in kinds]


def test_the_state_is_the_state_machine_s_projection_of_the_chain_s_events() -> None:
    assert incident_state([]) == ""
    assert incident_state(_chain()) == "open"
    assert incident_state(_chain(DiagnosisReady)) == "diagnosed"
    assert incident_state(_chain(DiagnosisReady, FixFailed)) == "failed"
    assert incident_state(_chain(DiagnosisReady, FixValidated, FixApproved)) == "approved"  # no branch pushed
    assert incident_state(_chain(DiagnosisReady, FixValidated, FixApproved, PrOpened)) == "pr_opened"
    assert incident_state(_chain(DiagnosisReady, FixFailed, FixValidated)) == "failed"  # terminal wins

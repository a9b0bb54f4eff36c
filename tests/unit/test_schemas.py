"""Contracts: generated schemas match the models; envelopes are strict to build and tolerant to read."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from schemas import generate, streams, subjects
from schemas.codec import decode, encode
from schemas.envelope import derived_id
from schemas.events import (
    EVENT_TYPES,
    AlertReceived,
    AlertReceivedPayload,
    IncidentOpened,
    IncidentOpenedPayload,
    Severity,
)


def test_generated_schemas_are_checked_in_and_current() -> None:
    stale = [str(p) for p, text in generate.expected_files().items() if not p.exists() or p.read_text() != text]
    assert not stale, f"run `python -m schemas.generate` and commit: {stale}"


def test_every_design_event_type_exists_with_a_subject() -> None:
    names = {cls.TYPE for cls in EVENT_TYPES}
    assert names == {
        "alert.received", "alert.suppressed", "incident.opened", "diagnosis.ready", "fix.validated", "fix.failed",
        "fix.approved", "fix.rejected", "approval.requested", "approval.decided", "pr.opened", "pr.event",
        "task.requested", "notification.sent",
    }  # fmt: skip
    # Every type's subject is a distinct constant in schemas/subjects.py (nothing written inline).
    constants = {v for k, v in vars(subjects).items() if k.isupper() and isinstance(v, str)}
    assert {subjects.for_type(cls.TYPE) for cls in EVENT_TYPES} <= constants


def alert() -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="svc", title="boom"), source="ingest")


def test_producer_cannot_build_an_event_with_an_unknown_field() -> None:
    with pytest.raises(ValidationError):
        AlertReceivedPayload(source="generic", service="svc", title="t", surprise=1)  # type: ignore[call-arg]


def test_consumer_ignores_fields_it_does_not_know() -> None:
    data = json.loads(encode(alert()))
    data["added_later"] = {"x": 1}
    data["payload"]["new_optional_field"] = "v2"
    parsed = decode(json.dumps(data), AlertReceived)
    assert parsed.payload.title == "boom"
    assert decode(json.dumps(data)).type == "alert.received"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["payload"].pop("title"), "title"),
        (lambda d: d.update(occurred_at="2026-01-01T00:00:00"), "occurred_at"),  # naive time is refused
        (lambda d: d.update(type="alert.exploded"), "type"),
    ],
)
def test_malformed_events_are_refused(mutate, field) -> None:
    data = json.loads(encode(alert()))
    mutate(data)
    with pytest.raises(ValidationError):
        decode(json.dumps(data), AlertReceived if field != "type" else None)


def test_derived_events_have_deterministic_ids_and_causation() -> None:
    a = alert()
    payload = IncidentOpenedPayload(fingerprint="f", title="t", service="s", severity=Severity.P1)
    first = a.derive(IncidentOpened, payload, stage="triage", incident_id=uuid.uuid4())
    again = a.derive(IncidentOpened, payload, stage="triage", incident_id=first.incident_id)
    assert first.event_id == again.event_id == derived_id(a.event_id, "triage", "incident.opened")
    assert first.causation_id == a.event_id
    assert first.type == "incident.opened" and first.source == "triage"


def test_occurred_at_is_normalized_to_utc() -> None:
    data = json.loads(encode(alert()))
    data["occurred_at"] = "2026-11-21T14:00:00+02:00"
    assert decode(json.dumps(data), AlertReceived).occurred_at.isoformat() == "2026-11-21T12:00:00+00:00"


def test_consumer_definitions_are_consistent() -> None:
    durables = [c.durable for c in streams.CONSUMERS]
    assert len(durables) == len(set(durables))
    known = {subjects.for_type(cls.TYPE) for cls in EVENT_TYPES}
    assert all(c.subject in known for c in streams.CONSUMERS)
    with pytest.raises(ValidationError):
        streams.ConsumerDef(durable="x", service="x", subject="s", max_deliver=2, backoff_s=(1, 2, 3))

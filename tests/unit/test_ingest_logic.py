"""Generic alert validation, normalization into alert.received and delivery-id based event ids (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import AlertReceivedPayload
from services.ingest.logic import RAW_LIMIT, GenericAlert, clip_raw, event_id_for, normalize

RECEIVED = datetime(2024, 6, 3, 10, 0, 1, tzinfo=UTC)

# ---------------------------------------------------------------- GenericAlert validation


@pytest.mark.parametrize(
    ("body", "bad_field"),
    [
        ({"service": "shopcart"}, "title"),
        ({"title": "boom"}, "service"),
        ({"title": "", "service": "shopcart"}, "title"),
        ({"title": "   ", "service": "shopcart"}, "title"),  # whitespace is stripped first
        ({"title": "boom", "service": ""}, "service"),
        ({"title": "x" * 501, "service": "shopcart"}, "title"),
        ({"title": "boom", "service": "s" * 201}, "service"),
        ({"title": "boom", "service": "shopcart", "status": "FIRING"}, "status"),
        ({"title": "boom", "service": "shopcart", "status": "acknowledged"}, "status"),
        ({"title": "boom", "service": "shopcart", "status": "firing "}, None),  # stripped, then valid
        ({"title": "boom", "service": "shopcart", "severity": "s" * 51}, "severity"),
        ({"title": "boom", "service": "shopcart", "links": ["http://x"] * 21}, "links"),
        ({"title": "boom", "service": "shopcart", "occurred_at": "2024-06-03T10:00:00"}, "occurred_at"),  # naive
        ({"title": "boom", "service": "shopcart", "labels": {"k": 1}}, "labels"),
    ],
)
def test_generic_alert_validation(body: dict[str, Any], bad_field: str | None) -> None:
    if bad_field is None:
        GenericAlert.model_validate(body)
        return
    with pytest.raises(ValidationError) as info:
        GenericAlert.model_validate(body)
    assert {err["loc"][0] for err in info.value.errors()} == {bad_field}


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_generic_alert_status_values(status: str) -> None:
    assert GenericAlert(title="boom", service="shopcart", status=status).status == status


def test_generic_alert_ignores_unknown_fields_and_strips() -> None:
    alert = GenericAlert.model_validate(
        {"title": "  boom  ", "service": " shopcart ", "x_custom": {"nested": 1}, "priority": 7}
    )
    assert alert.title == "boom"
    assert alert.service == "shopcart"
    assert not hasattr(alert, "x_custom")
    assert "priority" not in alert.model_dump()


def test_generic_alert_defaults() -> None:
    alert = GenericAlert(title="boom", service="shopcart")
    assert alert.status == "firing"
    assert alert.labels == {}
    assert alert.links == []
    assert alert.occurred_at is None


# ---------------------------------------------------------------- normalize

FULL_BODY: dict[str, Any] = {
    "title": "KeyError in checkout",
    "service": "shopcart",
    "severity": "critical",
    "description": "coupon lookup failed",
    "stack_trace": "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nKeyError: 'x'\n",
    "labels": {"env": "prod", "region": "eu-west-1"},
    "commit": "abc1234",
    "version": "1.2.3",
    "fingerprint": "fp-1",
    "status": "resolved",
    "resource": "pod/web-1",
    "links": ["https://grafana.example/d/1"],
    "occurred_at": "2024-06-03T09:59:00+02:00",
}


def test_normalize_maps_every_field() -> None:
    alert = GenericAlert.model_validate(FULL_BODY)
    p = normalize(alert, FULL_BODY, "dlv-1", RECEIVED)
    assert isinstance(p, AlertReceivedPayload)
    assert p.source == "generic"
    assert (p.title, p.service, p.severity_hint, p.description) == (
        "KeyError in checkout",
        "shopcart",
        "critical",
        "coupon lookup failed",
    )
    assert p.stack_trace == FULL_BODY["stack_trace"].strip()  # str_strip_whitespace applies to every str
    assert p.labels == {"env": "prod", "region": "eu-west-1"}
    assert (p.commit, p.version, p.fingerprint, p.status, p.resource) == (
        "abc1234",
        "1.2.3",
        "fp-1",
        "resolved",
        "pod/web-1",
    )
    assert p.links == ["https://grafana.example/d/1"]
    assert p.occurred_at == datetime(2024, 6, 3, 9, 59, tzinfo=timezone(timedelta(hours=2)))
    assert p.delivery_id == "dlv-1"
    assert p.raw is not None
    assert json.loads(p.raw) == FULL_BODY


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        (None, RECEIVED),
        ("2024-06-03T08:00:00Z", datetime(2024, 6, 3, 8, 0, tzinfo=UTC)),
    ],
)
def test_normalize_occurred_at_defaults_to_received(occurred_at: str | None, expected: datetime) -> None:
    body: dict[str, Any] = {"title": "boom", "service": "shopcart"}
    if occurred_at:
        body["occurred_at"] = occurred_at
    p = normalize(GenericAlert.model_validate(body), body, None, RECEIVED)
    assert p.occurred_at == expected
    assert p.delivery_id is None
    assert p.status == "firing"
    assert p.severity_hint is None


@pytest.mark.parametrize(
    ("body", "clipped"),
    [
        ({"title": "boom", "service": "s"}, False),
        ({"title": "boom", "service": "s", "blob": "x" * (RAW_LIMIT - 100)}, False),
        ({"title": "boom", "service": "s", "blob": "x" * RAW_LIMIT}, True),
        ({"title": "boom", "service": "s", "blob": "x" * (RAW_LIMIT * 5)}, True),
    ],
)
def test_raw_is_clipped_with_a_marker(body: dict[str, Any], clipped: bool) -> None:
    p = normalize(GenericAlert.model_validate(body), body, None, RECEIVED)
    assert p.raw is not None
    assert len(p.raw) <= RAW_LIMIT
    compact = json.dumps(body, separators=(",", ":"))
    if clipped:
        assert p.raw.endswith("…[truncated]")
        assert compact.startswith(p.raw.removesuffix("…[truncated]"))
    else:
        assert p.raw == compact
        assert "[truncated]" not in p.raw


def test_clip_raw_exact_limit_is_kept() -> None:
    # {"k":"..."} is 8 characters of JSON around the value
    body = {"k": "y" * (RAW_LIMIT - 8)}
    assert len(clip_raw(body)) == RAW_LIMIT
    assert clip_raw(body) == json.dumps(body, separators=(",", ":"))
    longer = {"k": "y" * (RAW_LIMIT - 7)}
    assert clip_raw(longer).endswith("…[truncated]")


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {"env": "prod"},
        {"team": "payments", "k8s.io/pod": "web-1", "empty": ""},
    ],
)
def test_normalize_preserves_labels(labels: dict[str, str]) -> None:
    body = {"title": "boom", "service": "s", "labels": labels}
    p = normalize(GenericAlert.model_validate(body), body, None, RECEIVED)
    assert p.labels == labels


# ---------------------------------------------------------------- event_id_for


@pytest.mark.parametrize("delivery", ["abc", "0f6c5f8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f", "x" * 300])
def test_same_delivery_same_event_id(delivery: str) -> None:
    first = event_id_for("generic", delivery)
    assert first == event_id_for("generic", delivery)
    assert first.version == 5


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("generic", "abc"), ("sentry", "abc")),
        (("generic", "abc"), ("generic", "abd")),
    ],
)
def test_different_source_or_delivery_different_event_id(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert event_id_for(*a) != event_id_for(*b)


@pytest.mark.parametrize("delivery", [None, ""])
def test_no_delivery_id_random_each_time(delivery: str | None) -> None:
    ids = {event_id_for("generic", delivery) for _ in range(5)}
    assert len(ids) == 5
    assert all(isinstance(i, uuid.UUID) and i.version == 4 for i in ids)

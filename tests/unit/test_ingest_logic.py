"""Generic alert validation and mapping, normalization into alert.received, event ids, and who gets verified (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from pagerpatch.settings import IngestSettings
from schemas.events import AlertReceived, AlertReceivedPayload
from services.ingest import domain
from services.ingest.providers import PROVIDERS, Context, Rejection, WebhookRequest, generic
from services.ingest.providers.common import RAW_LIMIT, clip_raw, event_id_for
from services.ingest.providers.generic import GenericAlert
from services.ingest.providers.generic import to_payload as normalize
from services.ingest.settings import IngestConfig

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


# ---------------------------------------------------------------- generic field mapping

FOREIGN = {
    "alert": {"name": "Checkout 5xx", "state": "ALERTING", "priority": 1},
    "tags": {"app": "checkout", "env": "prod"},
    "urls": ["https://grafana.example/d/1", "not a url"],
    "status": "this key means nothing with a mapping",
}
MAPPING = {"title": "/alert/name", "service": "tags.app", "status": "alert.state", "severity": "/alert/priority",
           "labels": "/tags", "links": "urls"}  # fmt: skip


def _generic(body: dict[str, Any], mapping: dict[str, str]) -> Any:
    c = Context(now=RECEIVED, settings=IngestSettings(generic_mapping=mapping))  # type: ignore[arg-type]
    return generic.normalize(WebhookRequest(headers={}, body=json.dumps(body).encode()), c)


def test_mapping_turns_any_json_into_an_alert() -> None:
    out = _generic(FOREIGN, MAPPING)
    [event] = out.events
    assert isinstance(event, AlertReceived)
    p = event.payload
    assert (p.title, p.service, p.status, p.severity_hint) == ("Checkout 5xx", "checkout", "firing", "1")
    assert p.labels == {"app": "checkout", "env": "prod"} and p.links == ["https://grafana.example/d/1"]
    assert json.loads(p.raw or "") == FOREIGN


@pytest.mark.parametrize(("state", "status"), [("OK", "resolved"), ("resolved", "resolved"), ("triggered", "firing")])
def test_mapping_understands_common_state_words(state: str, status: str) -> None:
    body = {**FOREIGN, "alert": {**FOREIGN["alert"], "state": state}}
    assert _generic(body, MAPPING).events[0].payload.status == status


def test_mapping_names_the_path_of_a_missing_field() -> None:
    out = _generic({"tags": {"app": "x"}}, MAPPING)
    assert isinstance(out, Rejection) and out.status == 400
    assert "title: Field required (mapped from /alert/name)" in out.reason


@pytest.mark.parametrize(
    ("path", "value"),
    [("/a/b", 1), ("a.b", 1), ("/list/1", "y"), ("list.0", "x"), ("/a~1b", 2), ("/missing", None), ("a.b.c", None)],
)
def test_resolve_paths(path: str, value: Any) -> None:
    assert generic.resolve({"a": {"b": 1}, "list": ["x", "y"], "a/b": 2}, path) == value


# ---------------------------------------------------------------- who is verified


def _config(secrets: dict[str, tuple[bytes, ...]] | None = None, **edge: Any) -> IngestConfig:
    return IngestConfig(host="127.0.0.1", port=0, max_body_bytes=1024, edge=IngestSettings(**edge),
                        secrets=secrets or {})  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "config", "expected"),
    [
        ("github", _config({"github": (b"s",)}), "verify"),
        ("github", _config({"github": (b"s",)}, open_providers=["github"]), "verify"),  # a secret is always checked
        ("github", _config(open_providers=["github"]), "open"),
        ("github", _config(), "PAGERPATCH_GITHUB_WEBHOOK_SECRET"),
        ("generic", _config(open_providers=["github"]), "PAGERPATCH_GENERIC_WEBHOOK_SECRET"),
        ("alertmanager", _config(), "PAGERPATCH_ALERTMANAGER_TOKEN"),
        ("sns", _config(), "sns_topic_arns"),
        ("sns", _config(sns_topic_arns=["arn:aws:sns:us-east-1:1:t"]), "verify"),
        ("sns", _config(open_providers=["sns"]), "verify"),  # AWS's signature is checked even when opened
    ],
)
def test_access(provider: str, config: IngestConfig, expected: str) -> None:
    got = domain.access(PROVIDERS[provider], config)
    if isinstance(got, Rejection):
        assert got.status == 401 and expected in got.reason and "open_providers" in got.reason
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("header", "ok"),
    [("application/json", True), ("Application/JSON; charset=utf-8", True), ("text/plain", False), (None, False)],
)
def test_content_types(header: str | None, ok: bool) -> None:
    refusal = domain.content_type_refusal(PROVIDERS["github"], domain.media_type(header))
    assert (refusal is None) == ok
    if refusal is not None:
        assert refusal.status == 415 and "application/json" in refusal.reason


@pytest.mark.parametrize(
    ("content_length", "refused"),
    [(None, False), ("", False), ("1024", False), ("1025", True), ("-1", False), ("1e9", False), (" 2000", False)],
)
def test_declared_size(content_length: str | None, refused: bool) -> None:
    # Only a plain number over the limit is refused unread; anything else is read and counted.
    refusal = domain.declared_size_refusal(content_length, 1024)
    assert (refusal is not None) == refused
    if refusal is not None:
        assert refusal == Rejection(413, f"body of {content_length} bytes exceeds the limit of 1024")
    assert domain.oversize(1024) == Rejection(413, "body exceeds the limit of 1024 bytes")


def test_exposure_names_opened_and_refused_providers() -> None:
    config = _config({"github": (b"s",), "generic": (), "slack": (), "sns": ()}, open_providers=["generic", "github"])
    # github is opened but has a secret (so it is verified anyway); sns is never "missing" (AWS signs it).
    assert domain.exposure(config) == (["generic"], ["slack"])

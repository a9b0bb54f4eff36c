"""Property tests: arbitrary bytes, arbitrary JSON and mutated real payloads never make ingest fail with a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from pagerpatch.settings import IngestSettings, Settings
from services.ingest.app import create_app
from services.ingest.providers import PROVIDERS, Context, Delivery, Rejection, WebhookRequest, sns
from services.ingest.settings import IngestConfig
from services.ingest.usecase import IngestDeps
from tests.support.ingest import FIXTURES, MemoryDeliveries, MemoryPublisher, SnsSigner, fixture_json, lambda_to_https

NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
SIGNER = SnsSigner.create()
CTX = Context(now=NOW, settings=IngestSettings(generic_mapping={"title": "/a/0", "service": "b.c"}), secrets=(b"k",))
CTX_PLAIN = Context(now=NOW, settings=IngestSettings(), secrets=(b"k",), certificate=SIGNER.cert_pem)

HEADER_NAMES = [
    "x-github-event", "x-github-delivery", "x-hub-signature-256", "x-slack-signature", "x-slack-request-timestamp",
    "x-pagerduty-signature", "sentry-hook-resource", "sentry-hook-signature", "request-id", "linear-signature",
    "authorization", "x-grafana-alerting-signature", "x-grafana-alerting-signature-timestamp",
    "x-pagerpatch-signature", "x-pagerpatch-delivery", "idempotency-key",
]  # fmt: skip
HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["issue", "event_alert", "error", "metric_alert", "check_run", "workflow_job", "issues",
                     "issue_comment", "pull_request", "ping", "Bearer k", "Basic azpr", "Basic !!", "v0=" + "0" * 64,
                     "v1=" + "0" * 64, "sha256=" + "0" * 64, "0" * 64, "1700000000", "-1", "99999999999999999999"]),
)  # fmt: skip
HEADERS = st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, max_size=6)
CTYPES = st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


def _exercise(provider: str, req: WebhookRequest, ctx: Context) -> None:
    p = PROVIDERS[provider]
    if p.certificate_url is not None:
        out = p.certificate_url(req, ctx)
        assert isinstance(out, (str, Rejection))
    assert p.verify(req, ctx) is None or isinstance(p.verify(req, ctx), Rejection)
    result = p.normalize(req, ctx)
    assert isinstance(result, (Delivery, Rejection))
    if isinstance(result, Rejection):
        assert 400 <= result.status < 500 and result.reason


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@FAST
@given(body=st.binary(max_size=400), headers=HEADERS, ctype=CTYPES)
def test_arbitrary_bytes(provider: str, body: bytes, headers: dict[str, str], ctype: str) -> None:
    _exercise(provider, WebhookRequest(headers=headers, body=body, content_type=ctype), CTX)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@FAST
@given(data=JSON, headers=HEADERS, ctype=CTYPES)
def test_arbitrary_json(provider: str, data: Any, headers: dict[str, str], ctype: str) -> None:
    body = json.dumps(data).encode()
    _exercise(provider, WebhookRequest(headers=headers, body=body, content_type=ctype), CTX)
    _exercise(provider, WebhookRequest(headers=headers, body=body, content_type=ctype), CTX_PLAIN)


# ---------------------------------------------------------------- mutated real payloads


def _https(data: dict[str, Any]) -> dict[str, Any]:
    return lambda_to_https(data) if "Records" in data else data


FIXTURE_PROVIDER = {"github": "github", "aws": "sns", "pagerduty": "pagerduty", "sentry": "sentry", "slack": "slack"}
REAL = [
    (FIXTURE_PROVIDER[f.name.split("_")[0]], _https(fixture_json(f.name)))
    for f in sorted(FIXTURES.glob("*.json"))
    if f.name.split("_")[0] in FIXTURE_PROVIDER
]
REAL += [("alertmanager", {"groupKey": "g", "status": "firing", "alerts": [
    {"status": "firing", "labels": {"alertname": "A", "service": "s"}, "annotations": {"summary": "x"},
     "startsAt": "2024-01-01T00:00:00Z", "fingerprint": "f"}]})]  # fmt: skip
REAL += [("linear", {"action": "create", "type": "Issue", "webhookTimestamp": int(NOW.timestamp() * 1000),
                     "webhookId": "w", "data": {"title": "t", "labels": [{"name": "pagerpatch", "id": "l"}]},
                     "updatedFrom": {"labelIds": []}})]  # fmt: skip


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, (*prefix, i))
    return out


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: replaced(data[head], rest, value)}
    copy = list(data)
    copy[head] = replaced(copy[head], rest, value)
    return copy


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    provider, data = draw(st.sampled_from(REAL))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(data)))
        data = replaced(data, path, draw(JSON))
    return provider, data


EVENTS = ["check_run", "workflow_job", "issues", "issue_comment", "pull_request", "ping", "push"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), event=st.sampled_from(EVENTS), resource=st.sampled_from(["issue", "event_alert", "error"]))
def test_mutated_real_payloads(case: tuple[str, Any], event: str, resource: str) -> None:
    provider, data = case
    headers = {"x-github-event": event, "sentry-hook-resource": resource}
    body = json.dumps(data).encode()
    ctx = Context(now=NOW, settings=IngestSettings(bot_label="bug"), certificate=SIGNER.cert_pem)
    if provider == "sns" and isinstance(data, dict):
        try:
            body = json.dumps(SIGNER.sign({k: v for k, v in data.items() if k != "SigningCertUrl"})).encode()
        except (TypeError, AttributeError, ValueError):
            pass
        req = WebhookRequest(headers=headers, body=body, content_type="text/plain")
        assert isinstance(sns.certificate_url(req, ctx), (str, Rejection))
    _exercise(provider, WebhookRequest(headers=headers, body=body, content_type="application/json"), ctx)


# ---------------------------------------------------------------- the HTTP app


class _Sns:
    async def certificate(self, url: str) -> bytes:
        return SIGNER.cert_pem

    async def confirm(self, url: str) -> None:
        return None


def _client() -> TestClient:
    settings_ = Settings(home="/tmp/pagerpatch-props", ingest_max_body_bytes=2048,
                         ingest=IngestSettings(open_providers=list(PROVIDERS)))  # type: ignore[arg-type]  # fmt: skip
    app = create_app(settings_)
    app.state.deps = IngestDeps(
        config=IngestConfig.from_settings(settings_), publisher=MemoryPublisher(), deliveries=MemoryDeliveries(),
        sns=_Sns(), clock=lambda: NOW,
    )  # fmt: skip
    return TestClient(app, raise_server_exceptions=False)


CLIENT = _client()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    provider=st.sampled_from([*sorted(PROVIDERS), "unknown"]),
    body=st.one_of(st.binary(max_size=3000), JSON.map(lambda d: json.dumps(d).encode())),
    headers=HEADERS,
    ctype=st.one_of(CTYPES, st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)),
)
def test_http_app_never_answers_500(provider: str, body: bytes, headers: dict[str, str], ctype: str) -> None:
    safe = {k: v for k, v in headers.items() if v.isascii() and v.isprintable()}
    resp = CLIENT.post(f"/webhooks/{provider}", content=body, headers={**safe, "content-type": ctype})
    assert resp.status_code in {200, 202, 400, 401, 403, 404, 413, 415}, resp.text
    assert resp.headers["content-type"] == "application/json"

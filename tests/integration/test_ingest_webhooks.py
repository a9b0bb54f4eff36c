"""Every provider's webhook on a real bus and database: accepted fixtures land in the stream, refusals publish nothing,
retries are never doubled (even after the stream's duplicate window), and a bus outage loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import nats
import pytest
from pydantic import SecretStr

from pagerpatch.kernel import bus, store
from pagerpatch.ops.embedded import EmbeddedNats
from pagerpatch.settings import BusSettings, IngestSettings, Settings
from schemas import streams
from schemas.events import AlertReceived
from services.ingest.adapters import HttpSns
from services.ingest.app import bootstrap, create_app
from tests.support.ingest import (
    FIXTURES,
    TOPIC,
    FakeAws,
    SnsSigner,
    bearer,
    generic_headers,
    github_headers,
    lambda_to_https,
    linear_headers,
    pagerduty_headers,
    sentry_headers,
    slack_headers,
    stored,
)
from tests.support.ingest import fixture as read_fixture
from tests.support.ingest import fixture_json as read_fixture_json

pytestmark = pytest.mark.integration

SECRET = "integration-secret"
SIGNER = SnsSigner.create()
USED: set[str] = set()


def fixture(name: str) -> bytes:
    USED.add(name)
    return read_fixture(name)


def fixture_json(name: str) -> dict[str, Any]:
    USED.add(name)
    return read_fixture_json(name)


@dataclass
class Edge:
    client: httpx.AsyncClient
    nats_url: str
    aws: FakeAws

    async def post(self, provider: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post(f"/webhooks/{provider}", content=body, headers=headers)


def secrets(value: str) -> dict[str, Any]:
    names = ("github_webhook_secret", "slack_signing_secret", "pagerduty_webhook_secret", "linear_webhook_secret",
             "sentry_client_secret", "grafana_webhook_secret", "alertmanager_token",
             "generic_webhook_secret")  # fmt: skip
    return {n: [SecretStr("old-rotated-out"), SecretStr(value)] for n in names}


@contextlib.asynccontextmanager
async def edge(nats_url: str, db: str, home: Path, **overrides: Any) -> AsyncIterator[Edge]:
    settings = Settings(nats_url=nats_url, database_url=db, home=home, **overrides)
    await store.migrate(db)
    nc = await nats.connect(nats_url)
    await bus.setup(nc.jetstream(), settings.bus)
    await nc.drain()
    aws = FakeAws(SIGNER.cert_pem)
    broker = bus.make_broker(nats_url, name="ingest-test")
    await broker.connect()
    pool = await store.create_pool(db)
    sns = HttpSns(transport=aws.transport())
    app = create_app(settings)
    app.state.deps = bootstrap(settings, pool, broker=broker, sns=sns)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")
    try:
        yield Edge(client, nats_url, aws)
    finally:
        await client.aclose()
        await sns.aclose()
        with contextlib.suppress(Exception):  # the broker may be mid-reconnect to a stopped server
            await broker.stop()
        await pool.close()


@pytest.fixture
async def configured(nats_url: str, fresh_db: str, tmp_path: Path) -> AsyncIterator[Edge]:
    ingest = IngestSettings(sns_topic_arns=[TOPIC])
    async with edge(nats_url, fresh_db, tmp_path, ingest=ingest, ingest_max_body_bytes=64_000, **secrets(SECRET)) as e:
        yield e


async def stream_count(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jetstream().stream_info(streams.EVENTS_STREAM)).state.messages
    finally:
        await nc.drain()


def ids_of(resp: httpx.Response) -> list[str]:
    body = resp.json()
    return list(body.get("event_ids", [body["event_id"]]))


def _form(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def _sns(name: str, version: str = "1") -> bytes:
    data = fixture_json(name)
    msg = lambda_to_https(data) if "Records" in data else data
    return json.dumps(SIGNER.sign(msg, version)).encode()


def _approval() -> bytes:
    data = fixture_json("slack_block_actions.json")
    data["actions"][0].update(action_id="pagerpatch.approve", value=str(uuid.uuid4()))
    return _form(data)


def _linear() -> bytes:
    return json.dumps({
        "action": "create", "type": "Issue", "webhookId": "wh-1", "webhookTimestamp": int(time.time() * 1000),
        "actor": {"name": "Dana"},
        "data": {"identifier": "ENG-1", "title": "fix it", "labels": [{"name": "pagerpatch"}]},
    }).encode()  # fmt: skip


def _sentry_event_alert() -> bytes:
    """Sentry's own sample Python event (frames with `vars`) as an issue alert's `data.event`."""
    event = fixture_json("sentry_event_python_modern.json")
    return json.dumps({"action": "triggered", "data": {"event": event, "triggered_rule": "errors"}}).encode()


ALERTMANAGER = json.dumps({
    "status": "firing", "groupKey": "{}:{alertname=\"Down\"}",
    "alerts": [{"status": "firing", "labels": {"alertname": "Down", "service": "cart"}, "fingerprint": "f1"},
               {"status": "resolved", "labels": {"alertname": "Down", "service": "shop"}, "fingerprint": "f2"}],
}).encode()  # fmt: skip
GENERIC = json.dumps({"title": "KeyError in checkout", "service": "checkout"}).encode()
FORM = "application/x-www-form-urlencoded"


def case(provider: str, body: bytes, headers: Any, status: int, types: list[str]) -> Any:
    return pytest.param(provider, body, headers, status, types, id=f"{provider}-{'-'.join(types) or 'answered'}")


CASES = [
    *(case("github", fixture(f), lambda b, e=e: github_headers(SECRET, b, e), s, t) for f, e, s, t in [
        ("github_check_run_completed_failure.json", "check_run", 202, ["alert.received"]),
        ("github_workflow_job_completed_failure.json", "workflow_job", 202, ["alert.received"]),
        ("github_pull_request_closed.json", "pull_request", 202, ["pr.event"]),
        ("github_check_run_completed.json", "check_run", 200, []),
        ("github_issue_comment_created.json", "issue_comment", 200, []),
        ("github_issues_opened.json", "issues", 200, []),
        ("github_ping.json", "ping", 200, []),
        ("github_pull_request_opened.json", "pull_request", 200, []),
        ("github_push.json", "push", 200, []),
        ("github_workflow_run_completed.json", "workflow_run", 200, []),
    ]),
    *(case("sns", _sns(f, v), lambda b: {"content-type": "text/plain; charset=UTF-8"}, 200, t) for f, v, t in [
        ("aws_cloudwatch_alarm_sns_lambda_event_single_metric.json", "1", ["alert.received"]),
        ("aws_cloudwatch_alarm_sns_lambda_event_multiple_metrics.json", "2", ["alert.received"]),
        ("aws_sns_notification.json", "2", ["alert.received"]),
        ("aws_sns_unsubscribe_confirmation.json", "1", []),
    ]),
    *(case("pagerduty", fixture(f), lambda b: pagerduty_headers(SECRET, b), s, t) for f, s, t in [
        ("pagerduty_incident_priority_updated.json", 202, ["alert.received"]),
        ("pagerduty_signed_body_go_pagerduty_test.json", 202, ["alert.received"]),
        ("pagerduty_service_updated.json", 200, []),
    ]),
    case("sentry", fixture("sentry_issue_created.json"), lambda b: sentry_headers(SECRET, b, "issue"), 202,
         ["alert.received"]),
    case("sentry", _sentry_event_alert(), lambda b: sentry_headers(SECRET, b, "event_alert"), 202,
         ["alert.received"]),
    case("slack", fixture("slack_event_callback_app_mention.json"),
         lambda b: slack_headers(SECRET, b, int(time.time())), 200, ["task.requested"]),
    case("slack", fixture("slack_url_verification.json"), lambda b: slack_headers(SECRET, b, int(time.time())),
         200, []),
    case("slack", _form(fixture_json("slack_block_actions.json")),
         lambda b: slack_headers(SECRET, b, int(time.time()), FORM), 200, []),
    case("slack", _approval(), lambda b: slack_headers(SECRET, b, int(time.time()), FORM), 200, ["approval.decided"]),
    case("alertmanager", ALERTMANAGER, lambda b: bearer(SECRET), 202, ["alert.received", "alert.received"]),
    case("grafana", ALERTMANAGER, lambda b: bearer(SECRET), 202, ["alert.received", "alert.received"]),
    case("linear", _linear, lambda b: linear_headers(SECRET, b), 202, ["task.requested"]),  # timestamped when sent
    case("generic", GENERIC, lambda b: generic_headers(SECRET, b, "g-1"), 202, ["alert.received"]),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "body", "headers", "status", "types"), CASES)
async def test_every_fixture_is_accepted_with_a_correct_signature(
    configured: Edge, provider: str, body: Any, headers: Any, status: int, types: list[str]
) -> None:
    body = body() if callable(body) else body
    before = await stream_count(configured.nats_url)
    sent_headers = headers(body)
    resp = await configured.post(provider, body, sent_headers)
    assert resp.status_code == status, resp.text
    if not types:
        assert "event_id" not in resp.json()
        assert await stream_count(configured.nats_url) == before
        return
    ids = ids_of(resp)
    events = await stored(configured.nats_url, ids)
    assert sorted(e["type"] for e in events) == sorted(types) and len(events) == len(ids)
    for e in events:
        assert e["source"] == "ingest"
        if e["type"] == "alert.received":
            assert e["payload"]["source"] == provider and e["payload"]["raw"]
    again = await configured.post(provider, body, sent_headers)  # the provider's retry
    assert again.status_code == status and again.json()["duplicate"] is True
    assert len(await stored(configured.nats_url, ids)) == len(ids)


async def test_sentry_frame_vars_reach_the_stream_as_plain_values(configured: Edge) -> None:
    resp = await configured.post("sentry", body := _sentry_event_alert(), sentry_headers(SECRET, body, "event_alert"))
    assert resp.status_code == 202, resp.text
    [event] = await stored(configured.nats_url, ids_of(resp))
    assert event["payload"]["frame_vars"] == [{
        "file": "/Users/user/test/main.py", "function": "main", "line": 26,
        "vars": {"dict_var": {"key1": "value1", "key2": "value2", "key3": "value3"}, "int_var": 1,
                 "list_var": [1, 2, 3], "str_var": "Hello, world!"},
    }]  # fmt: skip


def test_every_fixture_file_has_a_case() -> None:
    assert {f.name for f in FIXTURES.glob("*.json")} <= USED


SUBSCRIPTION = _sns("aws_sns_subscription_confirmation.json")


async def test_sns_subscription_is_confirmed_after_verification_only_on_an_sns_host(configured: Edge) -> None:
    body = SUBSCRIPTION
    resp = await configured.post("sns", body, {"content-type": "text/plain"})
    assert resp.status_code == 200 and resp.json() == {"subscribed": TOPIC}
    confirmations = [u for u in configured.aws.requests if "ConfirmSubscription" in u]
    assert confirmations == [json.loads(body)["SubscribeURL"]]

    configured.aws.requests.clear()
    forged = json.loads(body)
    forged["Signature"] = SnsSigner.create().sign(forged)["Signature"]  # signed by someone else's key
    resp = await configured.post("sns", json.dumps(forged).encode(), {"content-type": "text/plain"})
    assert resp.status_code == 401 and not [u for u in configured.aws.requests if "ConfirmSubscription" in u]

    off_host = fixture_json("aws_sns_subscription_confirmation.json")
    off_host["SubscribeURL"] = "https://attacker.example/?Action=ConfirmSubscription"
    resp = await configured.post("sns", json.dumps(SIGNER.sign(off_host)).encode(), {"content-type": "text/plain"})
    assert resp.status_code == 400 and "SubscribeURL" in resp.json()["error"]
    assert not [u for u in configured.aws.requests if "attacker" in u or "ConfirmSubscription" in u]


async def test_sns_certificate_is_fetched_once_and_cached(configured: Edge) -> None:
    for name in ("aws_sns_notification.json", "aws_cloudwatch_alarm_sns_lambda_event_single_metric.json"):
        resp = await configured.post("sns", _sns(name), {"content-type": "text/plain"})
        assert resp.status_code == 200
    assert len([u for u in configured.aws.requests if u.endswith(".pem")]) == 1


GH = fixture("github_check_run_completed_failure.json")


@pytest.mark.parametrize(
    ("provider", "body", "headers", "status", "reason"),
    [
        ("github", GH + b" ", github_headers(SECRET, GH, "check_run"), 401, "does not match"),
        ("github", GH, github_headers("wrong", GH, "check_run"), 401, "does not match"),
        ("github", GH, {"content-type": "application/json", "x-github-event": "check_run"}, 401, "missing"),
        ("github", GH, {**github_headers(SECRET, GH, "check_run"), "x-hub-signature-256": "md5=1"}, 401, "malformed"),
        ("github", GH, {**github_headers(SECRET, GH, "check_run"), "content-type": "text/xml"}, 415, "content type"),
        ("slack", b"{}", slack_headers(SECRET, b"{}", int(time.time()) - 600), 401, "stale timestamp"),
        ("linear", b"x" * 70_000, linear_headers(SECRET, b"x" * 70_000), 413, "limit"),
        ("sns", _sns("aws_sns_notification.json", "3"), {"content-type": "text/plain"}, 401, "SignatureVersion"),
        ("sns", json.dumps({**json.loads(_sns("aws_sns_notification.json")),
                            "SigningCertURL": "https://evil.example/cert.pem"}).encode(),
         {"content-type": "text/plain"}, 401, "SigningCertURL"),
        ("generic", b"{oops", generic_headers(SECRET, b"{oops"), 400, "not valid JSON"),
        ("nosuch", b"{}", {"content-type": "application/json"}, 404, "unknown provider"),
    ],
)  # fmt: skip
async def test_refusals_publish_nothing(
    configured: Edge, provider: str, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    before = await stream_count(configured.nats_url)
    resp = await configured.post(provider, body, headers)
    assert resp.status_code == status and reason in resp.json()["error"]
    assert await stream_count(configured.nats_url) == before
    assert not [u for u in configured.aws.requests if "evil" in u]


async def test_a_provider_without_a_secret_is_refused_unless_opened(
    nats_url: str, fresh_db: str, tmp_path: Path
) -> None:
    body = GH
    async with edge(nats_url, fresh_db, tmp_path) as e:
        resp = await e.post("github", body, github_headers("anything", body, "check_run"))
        assert resp.status_code == 401 and "PAGERPATCH_GITHUB_WEBHOOK_SECRET" in resp.json()["error"]
    async with edge(nats_url, fresh_db, tmp_path, ingest=IngestSettings(open_providers=["github"])) as e:
        resp = await e.post("github", body, {"content-type": "application/json", "x-github-event": "check_run"})
        assert resp.status_code == 202


async def test_retry_after_the_duplicate_window_is_not_published_again(fresh_db: str, tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    try:
        bus_settings = BusSettings(duplicate_window_s=1.0)
        async with edge(url, fresh_db, tmp_path / "home", bus=bus_settings, **secrets(SECRET)) as e:
            headers = github_headers(SECRET, GH, "check_run", "delivery-after-window")
            first = await e.post("github", GH, headers)
            assert first.status_code == 202 and first.json()["duplicate"] is False
            await asyncio.sleep(1.5)  # the stream has forgotten the Nats-Msg-Id by now
            second = await e.post("github", GH, headers)
            assert second.status_code == 202 and second.json() == first.json() | {"duplicate": True}
            [event_id] = ids_of(first)
            assert len(await stored(url, [event_id])) == 1
            # Proof that the stream alone would have taken it: the same id published directly now is new to it.
            nc_broker = bus.make_broker(url, name="probe")
            await nc_broker.connect()
            try:
                [raw] = await stored(url, [event_id])
                assert await bus.publish(nc_broker, AlertReceived.model_validate(raw)) is False
            finally:
                await nc_broker.stop()
    finally:
        server.stop()


async def test_bus_outage_answers_503_and_the_providers_retry_is_accepted(fresh_db: str, tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    port = server.port
    try:
        bus_settings = BusSettings(publish_timeout_s=1.0)
        async with edge(url, fresh_db, tmp_path / "home", bus=bus_settings, **secrets(SECRET)) as e:
            body = fixture("pagerduty_incident_priority_updated.json")
            server.stop()
            down = await e.post("pagerduty", body, pagerduty_headers(SECRET, body))
            assert down.status_code == 503 and down.headers["retry-after"] == "5"
            assert (await e.client.get("/readyz")).status_code == 503
            server = EmbeddedNats(tmp_path / "nats", port=port)
            server.start()
            deadline = time.monotonic() + 20
            while (await e.client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "ingest did not reconnect to NATS"
                await asyncio.sleep(0.2)
            retry = await e.post("pagerduty", body, pagerduty_headers(SECRET, body))
            # The client may have flushed its buffered publish on reconnect ("duplicate": true then); either way
            # the alert is in the stream exactly once.
            assert retry.status_code == 202
            events = await stored(url, ids_of(retry))
            assert len(events) == 1 and events[0]["payload"]["title"] == "A little bump in the road"
    finally:
        server.stop()

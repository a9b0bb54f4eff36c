"""The webhook flow through in-memory ports: what is published, claimed and answered, refusals and outages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from pagerpatch.settings import IngestSettings, Settings
from services.ingest.app import create_app
from services.ingest.memory import MemoryDeliveryStore, MemoryPublisher, MemorySns
from services.ingest.settings import IngestConfig
from services.ingest.usecase import (
    Accepted,
    Answered,
    IngestDeps,
    Outcome,
    Refused,
    Unavailable,
    readiness,
    receive_webhook,
)
from tests.support.ingest import (
    CERT_URL,
    TOPIC,
    SnsSigner,
    bearer,
    fixture,
    fixture_json,
    generic_headers,
    github_headers,
)
from tests.support.ports import memory

NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
SECRET = "usecase-secret"
LIMIT = 16_384
ALERT = json.dumps({"title": "KeyError in checkout", "service": "checkout", "severity": "critical"}).encode()
GROUPED = json.dumps({
    "status": "firing", "groupKey": "{}:{alertname=\"Down\"}",
    "alerts": [{"status": "firing", "labels": {"alertname": "Down", "service": "cart"}, "fingerprint": "f1"},
               {"status": "firing", "labels": {"alertname": "Down", "service": "shop"}, "fingerprint": "f2"}],
}).encode()  # fmt: skip
SIGNER = SnsSigner.create()


def make_deps(secrets: dict[str, tuple[bytes, ...]] | None = None, **edge: Any) -> IngestDeps:
    config = IngestConfig(
        host="127.0.0.1", port=0, max_body_bytes=LIMIT, edge=IngestSettings(**edge),
        secrets={"generic": (SECRET.encode(),), "alertmanager": (SECRET.encode(),)} if secrets is None else secrets,
    )  # fmt: skip
    return IngestDeps(
        config=config,
        publisher=MemoryPublisher(),
        deliveries=MemoryDeliveryStore(),
        sns=MemorySns(certificates={CERT_URL: SIGNER.cert_pem}),
        clock=lambda: NOW,
    )


class Body:
    """The request body as Starlette streams it, in chunks, counting how many were read."""

    def __init__(self, body: bytes, chunk: int = 1024) -> None:
        self.parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.read += 1
            yield part


async def post(deps: IngestDeps, provider: str, body: bytes, headers: dict[str, str]) -> Outcome:
    return await receive_webhook(deps, provider, headers, Body(body))


def publisher(deps: IngestDeps) -> MemoryPublisher:
    return memory(deps.publisher, MemoryPublisher)


def ledger(deps: IngestDeps) -> MemoryDeliveryStore:
    return memory(deps.deliveries, MemoryDeliveryStore)


def sns(deps: IngestDeps) -> MemorySns:
    return memory(deps.sns, MemorySns)


# ---------------------------------------------------------------- accepted


async def test_an_alert_is_published_once_and_its_delivery_marked_published() -> None:
    deps = make_deps()
    outcome = await post(deps, "generic", ALERT, generic_headers(SECRET, ALERT, "d-1"))
    assert isinstance(outcome, Accepted)
    assert outcome.status == 202 and outcome.duplicate is False and len(outcome.event_ids) == 1
    [event] = publisher(deps).stored
    assert event.event_id == outcome.event_id and event.type == "alert.received"
    assert event.payload.title == "KeyError in checkout" and event.occurred_at is not None
    claim = ledger(deps).rows[("generic", "d-1")]
    assert claim.event_id == outcome.event_id and claim.published


async def test_a_retried_delivery_is_a_duplicate_and_is_not_published_again() -> None:
    deps = make_deps()
    headers = generic_headers(SECRET, ALERT, "d-1")
    first = await post(deps, "generic", ALERT, headers)
    again = await post(deps, "generic", ALERT, headers)
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert again.event_ids == first.event_ids and again.duplicate is True and first.duplicate is False
    assert publisher(deps).calls == 1 and len(publisher(deps).stored) == 1
    assert ledger(deps).attempts[("generic", "d-1")] == 2


async def test_a_delivery_without_an_id_is_published_without_a_claim() -> None:
    deps = make_deps()
    outcome = await post(deps, "generic", ALERT, generic_headers(SECRET, ALERT))
    assert isinstance(outcome, Accepted) and not outcome.duplicate
    assert len(publisher(deps).stored) == 1 and ledger(deps).rows == {}


async def test_grouped_alerts_are_accepted_with_every_id_and_retried_as_one_duplicate() -> None:
    deps = make_deps()
    first = await post(deps, "alertmanager", GROUPED, bearer(SECRET))
    again = await post(deps, "alertmanager", GROUPED, bearer(SECRET))
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert len(first.event_ids) == 2 and first.event_id == first.event_ids[0]
    assert [e.event_id for e in publisher(deps).stored] == list(first.event_ids)
    assert again.event_ids == first.event_ids and again.duplicate is True and len(publisher(deps).stored) == 2


async def test_a_delivery_with_nothing_to_publish_is_answered_and_nothing_is_published() -> None:
    deps = make_deps(secrets={"github": (SECRET.encode(),)})
    body = fixture("github_ping.json")
    outcome = await post(deps, "github", body, github_headers(SECRET, body, "ping", "p-1"))
    assert isinstance(outcome, Answered) and outcome.reply["pong"] is True
    assert publisher(deps).calls == 0 and ledger(deps).rows == {}


# ---------------------------------------------------------------- outages


async def test_a_bus_outage_is_unavailable_and_leaves_the_claim_for_the_retry() -> None:
    deps = make_deps(retry_after_s=7)
    headers = generic_headers(SECRET, ALERT, "d-1")
    publisher(deps).down = True
    outcome = await post(deps, "generic", ALERT, headers)
    assert outcome == Unavailable("storing the delivery durably", "Transient", 7)
    assert publisher(deps).stored == []
    claim = ledger(deps).rows[("generic", "d-1")]
    assert not claim.published  # the provider's retry must publish, not be answered as a duplicate

    publisher(deps).down = False
    retry = await post(deps, "generic", ALERT, headers)
    assert isinstance(retry, Accepted) and retry.duplicate is False and retry.event_id == claim.event_id
    assert [e.event_id for e in publisher(deps).stored] == [claim.event_id]
    assert ledger(deps).rows[("generic", "d-1")].published


async def test_a_ledger_outage_is_unavailable_and_nothing_is_published() -> None:
    deps = make_deps()
    ledger(deps).down = True
    outcome = await post(deps, "generic", ALERT, generic_headers(SECRET, ALERT, "d-1"))
    assert isinstance(outcome, Unavailable) and outcome.what == "storing the delivery durably"
    assert publisher(deps).calls == 0


def _sns_body(name: str) -> bytes:
    return json.dumps(SIGNER.sign(fixture_json(name))).encode()


async def test_an_sns_certificate_outage_is_unavailable_and_a_confirmation_is_sent_once_verified() -> None:
    deps = make_deps(secrets={}, sns_topic_arns=[TOPIC])
    sns(deps).down = True
    body = _sns_body("aws_sns_notification.json")
    down = await post(deps, "sns", body, {"content-type": "text/plain"})
    assert isinstance(down, Unavailable) and down.what == "fetching the signing certificate"
    assert publisher(deps).calls == 0

    sns(deps).down = False
    accepted = await post(deps, "sns", body, {"content-type": "text/plain"})
    assert isinstance(accepted, Accepted) and accepted.status == 200 and len(publisher(deps).stored) == 1
    subscription = _sns_body("aws_sns_subscription_confirmation.json")
    answered = await post(deps, "sns", subscription, {"content-type": "text/plain"})
    assert answered == Answered({"subscribed": TOPIC})
    assert sns(deps).confirmed == [json.loads(subscription)["SubscribeURL"]]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (ALERT, generic_headers("wrong-secret", ALERT, "d-1"), "does not match"),
        (ALERT + b" ", generic_headers(SECRET, ALERT, "d-1"), "does not match"),
        (ALERT, {"content-type": "application/json", "x-pagerpatch-delivery": "d-1"}, "missing"),
    ],
)
async def test_a_bad_signature_is_refused_and_nothing_is_claimed_or_published(
    body: bytes, headers: dict[str, str], reason: str
) -> None:
    deps = make_deps()
    outcome = await post(deps, "generic", body, headers)
    assert isinstance(outcome, Refused) and outcome.status == 401 and reason in outcome.reason
    assert publisher(deps).calls == 0 and ledger(deps).rows == {}


async def test_an_oversize_body_is_refused_as_announced_or_as_soon_as_it_is_read() -> None:
    deps = make_deps()
    big = json.dumps({"title": "t", "service": "s", "description": "x" * LIMIT}).encode()
    headers = generic_headers(SECRET, big, "d-1")
    announced = await receive_webhook(deps, "generic", {**headers, "content-length": str(len(big))}, Body(big))
    assert isinstance(announced, Refused) and announced.status == 413
    assert announced.reason == f"body of {len(big)} bytes exceeds the limit of {LIMIT}"
    streamed = Body(big + b" " * 10 * LIMIT)
    outcome = await receive_webhook(deps, "generic", headers, streamed)
    assert outcome == Refused(413, f"body exceeds the limit of {LIMIT} bytes")
    assert streamed.read == LIMIT // 1024 + 1  # stopped at the first chunk past the limit
    assert publisher(deps).calls == 0 and ledger(deps).rows == {}


async def test_an_unknown_content_type_is_refused_before_the_body_is_read() -> None:
    deps = make_deps()
    body = Body(ALERT)
    headers = {**generic_headers(SECRET, ALERT), "content-type": "text/xml"}
    outcome = await receive_webhook(deps, "generic", headers, body)
    assert outcome == Refused(415, "content type must be application/json, got 'text/xml'")
    assert body.read == 0 and publisher(deps).calls == 0


async def test_a_provider_without_a_secret_is_refused_naming_its_variable() -> None:
    deps = make_deps(secrets={})
    outcome = await post(deps, "generic", ALERT, generic_headers(SECRET, ALERT))
    assert isinstance(outcome, Refused) and outcome.status == 401
    assert "PAGERPATCH_GENERIC_WEBHOOK_SECRET" in outcome.reason and publisher(deps).calls == 0
    opened = make_deps(secrets={}, open_providers=["generic"])
    assert isinstance(await post(opened, "generic", ALERT, {"content-type": "application/json"}), Accepted)


async def test_an_unknown_provider_is_404_naming_the_known_ones() -> None:
    outcome = await post(make_deps(), "nosuch", ALERT, {"content-type": "application/json"})
    assert isinstance(outcome, Refused) and outcome.status == 404
    assert "unknown provider 'nosuch'" in outcome.reason and "generic" in outcome.reason


# ---------------------------------------------------------------- readiness and the HTTP answers


async def test_readiness_names_the_dependency_that_is_out() -> None:
    deps = make_deps()
    assert await readiness(deps) == {"bus": "ok", "database": "ok"}
    publisher(deps).down = True
    assert await readiness(deps) == {"bus": "unavailable: Transient", "database": "ok"}


def test_the_http_answers_keep_their_statuses_headers_and_bodies(tmp_path: Any) -> None:
    app = create_app(Settings(home=tmp_path))
    deps = app.state.deps = make_deps()
    client = TestClient(app)
    first = client.post("/webhooks/generic", content=ALERT, headers=generic_headers(SECRET, ALERT, "d-1"))
    assert first.status_code == 202
    assert first.json() == {"event_id": str(publisher(deps).stored[0].event_id), "duplicate": False}
    grouped = client.post("/webhooks/alertmanager", content=GROUPED, headers=bearer(SECRET))
    assert grouped.status_code == 202 and len(grouped.json()["event_ids"]) == 2
    assert grouped.json()["event_id"] == grouped.json()["event_ids"][0]
    refused = client.post("/webhooks/generic", content=ALERT, headers={"content-type": "text/plain"})
    assert refused.status_code == 415 and "application/json" in refused.json()["error"]
    publisher(deps).down = True
    down = client.post("/webhooks/generic", content=ALERT, headers=generic_headers(SECRET, ALERT, "d-2"))
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    assert down.json() == {"error": "pagerpatch cannot accept this delivery right now; retry later"}
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["ready"] is False

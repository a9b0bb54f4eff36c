"""Test helpers for ingest: provider signers, an SNS signing key and certificate, fixtures, in-memory adapters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from schemas import streams, subjects
from schemas.envelope import Event
from services.ingest.ports import Claim
from services.ingest.providers import sns

# Real provider payloads kept in this repository (tests/fixtures/providers/SOURCES.md says where each comes from).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"

CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture(name))
    return data


# ---------------------------------------------------------------- signers


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def github_headers(secret: str, body: bytes, event: str, delivery: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-hub-signature-256": "sha256=" + hex_hmac(secret, body),
    }


def slack_headers(secret: str, body: bytes, ts: int, ctype: str = "application/json") -> dict[str, str]:
    sig = "v0=" + hex_hmac(secret, f"v0:{ts}:".encode() + body)
    return {"content-type": ctype, "x-slack-request-timestamp": str(ts), "x-slack-signature": sig}


def pagerduty_headers(secret: str, body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "x-pagerduty-signature": "v1=" + hex_hmac(secret, body)}


def sentry_headers(secret: str, body: bytes, resource: str, request_id: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "sentry-hook-resource": resource,
        "sentry-hook-signature": hex_hmac(secret, body),
        "request-id": request_id or str(uuid.uuid4()),
    }


def linear_headers(secret: str, body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "linear-signature": hex_hmac(secret, body)}


def generic_headers(secret: str, body: bytes, delivery: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json", "x-pagerpatch-signature": "sha256=" + hex_hmac(secret, body)}
    if delivery:
        headers["x-pagerpatch-delivery"] = delivery
    return headers


def bearer(token: str) -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- SNS


@dataclass
class SnsSigner:
    """A test RSA key and a self-signed certificate standing in for AWS's SNS signing certificate."""

    key: rsa.RSAPrivateKey
    cert_pem: bytes

    @classmethod
    def create(cls) -> SnsSigner:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime.now(UTC) + timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert_pem=cert.public_bytes(serialization.Encoding.PEM))

    def sign(self, message: dict[str, Any], version: str = "1", cert_url: str = CERT_URL) -> dict[str, Any]:
        msg = {**message, "SignatureVersion": version, "SigningCertURL": cert_url}
        msg.pop("Signature", None)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(sns.string_to_sign(msg), padding.PKCS1v15(), algorithm)
        return {**msg, "Signature": base64.b64encode(signature).decode()}


def lambda_to_https(record_fixture: dict[str, Any]) -> dict[str, Any]:
    """The Lambda event's `Records[0].Sns` as SNS delivers it over HTTPS (…URL key spellings)."""
    msg = dict(record_fixture["Records"][0]["Sns"])
    msg["SigningCertURL"] = msg.pop("SigningCertUrl")
    msg["UnsubscribeURL"] = msg.pop("UnsubscribeUrl")
    msg.pop("MessageAttributes", None)
    msg["TopicArn"] = TOPIC
    return msg


@dataclass
class FakeAws:
    """An httpx transport playing AWS: serves the certificate, records subscription confirmations."""

    cert_pem: bytes
    requests: list[str] = field(default_factory=list)
    fail: bool = False

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(str(request.url))
            if self.fail:
                return httpx.Response(503)
            if request.url.path.endswith(".pem"):
                return httpx.Response(200, content=self.cert_pem)
            if request.url.params.get("Action") == "ConfirmSubscription":
                return httpx.Response(200, content=b"<ConfirmSubscriptionResponse/>")
            return httpx.Response(404)

        return httpx.MockTransport(handle)


# ---------------------------------------------------------------- in-memory adapters (for property tests)


@dataclass
class MemoryPublisher:
    events: list[Event[Any]] = field(default_factory=list)

    async def publish(self, event: Event[Any]) -> bool:
        dup = any(e.event_id == event.event_id for e in self.events)
        if not dup:
            self.events.append(event)
        return dup

    async def ready(self) -> None:
        return None


@dataclass
class MemoryDeliveries:
    rows: dict[tuple[str, str], tuple[uuid.UUID, bool]] = field(default_factory=dict)

    async def claim(self, source: str, delivery_id: str, event_id: uuid.UUID) -> Claim:
        eid, published = self.rows.setdefault((source, delivery_id), (event_id, False))
        return Claim(eid, published)

    async def mark_published(self, source: str, delivery_id: str) -> None:
        eid, _ = self.rows[(source, delivery_id)]
        self.rows[(source, delivery_id)] = (eid, True)

    async def ready(self) -> None:
        return None


async def stored(nats_url: str, event_ids: list[str]) -> list[dict[str, Any]]:
    """Every message in the events stream whose event_id is one of `event_ids` (duplicates included)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    sub = await js.subscribe(subjects.ALL_EVENTS, stream=streams.EVENTS_STREAM, ordered_consumer=True)
    out = []
    try:
        while True:
            msg = await sub.next_msg(timeout=0.5)
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue  # another test's poison message (the stream is shared by the session's tests)
            if isinstance(data, dict) and data.get("event_id") in event_ids:
                out.append(data)
    except nats.errors.TimeoutError:
        pass
    finally:
        await nc.drain()
    return out

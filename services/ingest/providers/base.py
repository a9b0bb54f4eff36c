"""What every provider module works with: the request as received, the verdicts, and the provider record (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pagerpatch.settings import IngestSettings
from schemas.envelope import Event


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One delivery as it arrived: lower-cased header names, the raw body bytes, the media type."""

    headers: Mapping[str, str]
    body: bytes
    content_type: str = "application/json"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal: 400 (malformed), 401 (signature, credentials, stale timestamp), 403 (not allowed)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a provider's pure functions may consult besides the request."""

    now: datetime
    settings: IngestSettings
    secrets: tuple[bytes, ...] = ()
    team: str | None = None
    certificate: bytes | None = None  # SNS: the PEM fetched from the (already validated) SigningCertURL


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a verified delivery means: events to publish, or an answer without publishing."""

    delivery_id: str | None
    events: tuple[Event[Any], ...] = ()
    reply: Mapping[str, Any] | None = None  # body of the 200 answer when nothing is published
    confirm_url: str | None = None  # SNS: SubscribeURL to GET (already checked to be an SNS host)
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def ignored(cls, delivery_id: str | None, why: str) -> Delivery:
        """Verified, understood, and of no interest to pagerpatch: answered 200 so the provider does not retry."""
        return cls(delivery_id=delivery_id, reply={"ignored": why})


Verify = Callable[[WebhookRequest, Context], Rejection | None]
Normalize = Callable[[WebhookRequest, Context], Delivery | Rejection]


@dataclass(frozen=True, slots=True)
class Provider:
    """One `POST /webhooks/<name>` endpoint: its media types, its verification and its normalization."""

    name: str
    content_types: frozenset[str]
    verify: Verify
    normalize: Normalize
    secret_env: str  # the variable holding its secret(s), named in refusals
    accepted_status: int = 202  # the answer once every event is in the stream (Slack wants a plain 200)
    # SNS only: the certificate to fetch before `verify` (or why the request is refused already).
    certificate_url: Callable[[WebhookRequest, Context], str | Rejection] | None = None

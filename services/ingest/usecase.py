"""One webhook delivery through the edge, over the ports: content type -> size -> access -> verify -> normalize ->
claim the delivery id -> publish (each PubAck awaited) -> mark, and the plain outcome the HTTP answer is made of.

Refusals are the provider's to fix (4xx, never retried by us); an outage is ours (503 + Retry-After: the provider
retries, and the delivery id makes that retry safe).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pagerpatch.kernel.errors import Transient
from services.ingest import domain
from services.ingest.ports import DeliveryStore, Publisher, SnsGateway
from services.ingest.providers import PROVIDERS, Context, Delivery, Rejection, WebhookRequest
from services.ingest.settings import IngestConfig

__all__ = [
    "Accepted",
    "Answered",
    "IngestDeps",
    "Outcome",
    "Refused",
    "Unavailable",
    "publish_delivery",
    "read_body",
    "readiness",
    "receive_webhook",
]

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestDeps:
    """The stage's configuration and ports (real ones from `app.bootstrap`, in-memory ones from `memory`)."""

    config: IngestConfig
    publisher: Publisher
    deliveries: DeliveryStore
    sns: SnsGateway
    clock: Callable[[], datetime] = _utcnow


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Accepted:
    """Every event of the delivery is in the stream (`duplicate`: it was there before this request)."""

    status: int  # the provider's success status (202, or 200 for those that want a plain 200)
    event_ids: tuple[uuid.UUID, ...]
    duplicate: bool

    @property
    def event_id(self) -> uuid.UUID:
        return self.event_ids[0]


@dataclass(frozen=True, slots=True)
class Answered:
    """A verified delivery with nothing to publish (ping, challenge, ignored kind): answered 200 with `reply`."""

    reply: Mapping[str, Any]


# A refusal is the provider module's own verdict (status and reason), passed through as it is.
Refused = Rejection


@dataclass(frozen=True, slots=True)
class Unavailable:
    """One of our dependencies is out: nothing was lost, the provider is asked to retry after `retry_after_s`."""

    what: str  # the step that failed, e.g. "storing the delivery durably"
    cause: str  # the failure's type name (logged, never sent)
    retry_after_s: int


Outcome = Accepted | Answered | Refused | Unavailable


def _refused(provider: str, rejection: Rejection) -> Refused:
    log.info("refused %s webhook: %d %s", provider, rejection.status, rejection.reason)
    return rejection


def _unavailable(deps: IngestDeps, provider: str, what: str, exc: Transient) -> Unavailable:
    cause = type(exc.__cause__ or exc).__name__
    log.warning("%s webhook: %s failed (%s); answered 503", provider, what, cause)
    return Unavailable(what, cause, deps.config.edge.retry_after_s)


# ---------------------------------------------------------------- the flow


async def receive_webhook(
    deps: IngestDeps, provider_name: str, headers: Mapping[str, str], body: AsyncIterable[bytes]
) -> Outcome:
    """The answer to one `POST /webhooks/<provider_name>`; `headers` has lower-case names, `body` is read only
    once the content type is acceptable, and never past the size limit."""
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        return Refused(404, f"unknown provider {provider_name[:50]!r}; known: {', '.join(sorted(PROVIDERS))}")
    cfg = deps.config
    ctype = domain.media_type(headers.get("content-type"))
    refusal = domain.content_type_refusal(provider, ctype)
    if refusal is not None:
        return _refused(provider_name, refusal)
    raw = await read_body(headers.get("content-length"), body, cfg.max_body_bytes)
    if isinstance(raw, Rejection):
        return _refused(provider_name, raw)
    access = domain.access(provider, cfg)
    if isinstance(access, Rejection):
        return _refused(provider_name, access)
    req = WebhookRequest(headers=headers, body=raw, content_type=ctype)
    ctx = Context(now=deps.clock(), settings=cfg.edge, secrets=cfg.secrets.get(provider_name, ()), team=cfg.team)
    if provider.certificate_url is not None:  # SNS: AWS's certificate is needed to verify the signature
        url = provider.certificate_url(req, ctx)
        if isinstance(url, Rejection):
            return _refused(provider_name, url)
        try:
            ctx = dataclasses.replace(ctx, certificate=await deps.sns.certificate(url))
        except Transient as exc:
            return _unavailable(deps, provider_name, "fetching the signing certificate", exc)
    if access == "verify":
        refusal = provider.verify(req, ctx)
        if refusal is not None:
            return _refused(provider_name, refusal)
    delivery = provider.normalize(req, ctx)
    if isinstance(delivery, Rejection):
        return _refused(provider_name, delivery)
    if delivery.confirm_url is not None:  # only reached by a verified SNS SubscriptionConfirmation
        try:
            await deps.sns.confirm(delivery.confirm_url)
        except Transient as exc:
            return _unavailable(deps, provider_name, "confirming the subscription", exc)
        log.info("%s subscription confirmed", provider_name)
    if not delivery.events:
        return Answered(delivery.reply or {"accepted": True})
    try:
        duplicate = await publish_delivery(deps, provider_name, delivery)
    except Transient as exc:
        return _unavailable(deps, provider_name, "storing the delivery durably", exc)
    return Accepted(provider.accepted_status, tuple([e.event_id for e in delivery.events]), duplicate)


async def read_body(content_length: str | None, chunks: AsyncIterable[bytes], limit: int) -> bytes | Rejection:
    """The whole body, or a 413 as soon as it is known to exceed `limit` (the rest is never read)."""
    refusal = domain.declared_size_refusal(content_length, limit)
    if refusal is not None:
        return refusal
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return domain.oversize(limit)
        parts.append(chunk)
    return b"".join(parts)


async def publish_delivery(deps: IngestDeps, source: str, delivery: Delivery) -> bool:
    """Claim the delivery id, publish every event (awaiting each PubAck), mark it published. True: a duplicate.

    A failure leaves the claim unpublished, so the provider's retry publishes again (the stream drops doubles).
    """
    if delivery.delivery_id:
        claim = await deps.deliveries.claim(source, delivery.delivery_id, delivery.events[0].event_id)
        if claim.published:
            return True
    if len(delivery.events) == 1:
        duplicate = await deps.publisher.publish(delivery.events[0])
    else:
        duplicate = all(await asyncio.gather(*(deps.publisher.publish(e) for e in delivery.events)))
    if delivery.delivery_id:
        await deps.deliveries.mark_published(source, delivery.delivery_id)
    return duplicate


async def readiness(deps: IngestDeps) -> dict[str, str]:
    """Each dependency's state for `/readyz`: "ok" or "unavailable: <why>" (probes never raise)."""
    checks: dict[str, str] = {}
    for name, probe in (("bus", deps.publisher.ready), ("database", deps.deliveries.ready)):
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:  # reported in the probe's answer: whatever it was, the dependency is not usable
            checks[name] = f"unavailable: {type(exc).__name__}"
    return checks

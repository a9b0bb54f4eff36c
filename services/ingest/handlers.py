"""Ingest HTTP routes: content type -> size -> verify -> normalize -> dedup -> publish, and only then 2xx."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import nats.errors
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.ingest import logic
from services.ingest.adapters import DeliveryStore, Publisher, SnsGateway
from services.ingest.providers import PROVIDERS, Context, Delivery, Rejection, WebhookRequest
from services.ingest.settings import IngestConfig

log = logging.getLogger(__name__)

# Our own outages: answered 503 + Retry-After, never 4xx (providers disable hooks after repeated 4xx).
OUTAGES: tuple[type[BaseException], ...] = (
    TimeoutError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    nats.errors.Error,
)


REMOTE_FAILURES: tuple[type[BaseException], ...] = (httpx.HTTPError, *OUTAGES)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestDeps:
    config: IngestConfig
    publisher: Publisher
    deliveries: DeliveryStore
    sns: SnsGateway
    clock: Callable[[], datetime] = _utcnow


def _json(body: Any, status: int, **headers: str) -> Response:
    return JSONResponse(body, status_code=status, headers=headers or None)


def _refuse(provider: str, rejection: Rejection) -> Response:
    log.info("refused %s webhook: %d %s", provider, rejection.status, rejection.reason)
    return _json({"error": rejection.reason}, rejection.status)


def _unavailable(deps: IngestDeps, provider: str, what: str, exc: BaseException) -> Response:
    log.warning("%s webhook: %s failed (%s); answered 503", provider, what, type(exc).__name__)
    retry = str(deps.config.edge.retry_after_s)
    return _json(
        {"error": "pagerpatch cannot accept this delivery right now; retry later"}, 503, **{"Retry-After": retry}
    )


async def read_body(request: Request, limit: int) -> bytes | Rejection:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return Rejection(413, f"body of {declared} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return Rejection(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def publish_delivery(deps: IngestDeps, source: str, delivery: Delivery) -> bool:
    """Claim the delivery id, publish every event (awaiting each PubAck), mark it published. True: a duplicate."""
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


async def webhook(request: Request) -> Response:
    name = request.path_params["provider"]
    provider = PROVIDERS.get(name)
    if provider is None:
        return _json({"error": f"unknown provider {name[:50]!r}; known: {', '.join(sorted(PROVIDERS))}"}, 404)
    deps: IngestDeps = request.app.state.deps
    cfg = deps.config
    ctype = logic.media_type(request.headers.get("content-type"))
    refusal = logic.content_type_refusal(provider, ctype)
    if refusal is not None:
        return _refuse(name, refusal)
    body = await read_body(request, cfg.max_body_bytes)
    if isinstance(body, Rejection):
        return _refuse(name, body)
    access = logic.access(provider, cfg)
    if isinstance(access, Rejection):
        return _refuse(name, access)
    req = WebhookRequest(headers=request.headers, body=body, content_type=ctype)
    ctx = Context(now=deps.clock(), settings=cfg.edge, secrets=cfg.secrets.get(name, ()), team=cfg.team)
    if provider.certificate_url is not None:
        url = provider.certificate_url(req, ctx)
        if isinstance(url, Rejection):
            return _refuse(name, url)
        try:
            ctx = dataclasses.replace(ctx, certificate=await deps.sns.certificate(url))
        except REMOTE_FAILURES as exc:
            return _unavailable(deps, name, "fetching the signing certificate", exc)
    if access == "verify":
        refusal = provider.verify(req, ctx)
        if refusal is not None:
            return _refuse(name, refusal)
    outcome = provider.normalize(req, ctx)
    if isinstance(outcome, Rejection):
        return _refuse(name, outcome)
    if outcome.confirm_url is not None:
        try:
            await deps.sns.confirm(outcome.confirm_url)
        except REMOTE_FAILURES as exc:
            return _unavailable(deps, name, "confirming the subscription", exc)
        log.info("%s subscription confirmed", name)
    if not outcome.events:
        return _json(dict(outcome.reply or {"accepted": True}), 200)
    try:
        duplicate = await publish_delivery(deps, name, outcome)
    except OUTAGES as exc:
        return _unavailable(deps, name, "storing the delivery durably", exc)
    ids = [str(e.event_id) for e in outcome.events]
    answer: dict[str, Any] = {"event_id": ids[0], "duplicate": duplicate}
    if len(ids) > 1:  # grouped notifications (Alertmanager, Grafana)
        answer["event_ids"] = ids
    return _json(answer, provider.accepted_status)


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"}, 200)


async def readyz(request: Request) -> Response:
    deps: IngestDeps = request.app.state.deps
    checks: dict[str, str] = {}
    for name, probe in (("bus", deps.publisher.ready), ("database", deps.deliveries.ready)):
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return _json({"ready": ready, **checks}, 200 if ready else 503)


routes = [
    Route("/webhooks/{provider}", webhook, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]

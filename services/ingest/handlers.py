"""Ingest HTTP routes: validate, publish durably, and only then answer 2xx."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import nats.errors
from faststream.nats import NatsBroker
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pagerpatch import bus
from pagerpatch.settings import Settings
from schemas.events import AlertReceived
from services.ingest import adapters, logic

log = logging.getLogger(__name__)


@dataclass
class IngestDeps:
    settings: Settings
    broker: NatsBroker
    pool: asyncpg.Pool


def _error(status: int, reason: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers or None)


async def read_body(request: Request, limit: int) -> bytes | JSONResponse:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _error(413, f"body of {declared} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _error(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def generic_webhook(request: Request) -> JSONResponse:
    deps: IngestDeps = request.app.state.deps
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return _error(415, f"content type must be application/json, got {ctype or 'none'!r}")
    body = await read_body(request, deps.settings.ingest_max_body_bytes)
    if isinstance(body, JSONResponse):
        return body
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _error(400, "body must be a JSON object")
    try:
        alert = logic.GenericAlert.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:10])
        return _error(400, f"invalid alert: {reasons}")
    delivery = request.headers.get("x-pagerpatch-delivery") or request.headers.get("idempotency-key")
    if delivery is not None and not (0 < len(delivery) <= 300):
        return _error(400, "delivery id must be 1 to 300 characters")
    try:
        if delivery:
            known = await adapters.seen(deps.pool, "generic", delivery)
            if known is not None:
                return JSONResponse({"event_id": str(known), "duplicate": True}, status_code=202)
        payload = logic.normalize(alert, data, delivery, datetime.now(UTC))
        event = AlertReceived.create(
            payload, source="ingest", team=deps.settings.team, event_id=logic.event_id_for("generic", delivery)
        )
        duplicate = await bus.publish(deps.broker, event, timeout=deps.settings.bus.publish_timeout_s)
        if delivery:
            await adapters.remember(deps.pool, "generic", delivery, event.event_id)
    except (TimeoutError, OSError, asyncpg.PostgresError, nats.errors.Error) as exc:
        log.warning("could not accept alert durably: %s", type(exc).__name__)
        return _error(503, "pagerpatch cannot store the alert right now; retry later", **{"Retry-After": "5"})
    return JSONResponse({"event_id": str(event.event_id), "duplicate": duplicate}, status_code=202)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    deps: IngestDeps = request.app.state.deps
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(deps.broker.config.connection_state.stream.account_info(), timeout=2)
        checks["bus"] = "ok"
    except Exception as exc:
        checks["bus"] = f"unavailable: {type(exc).__name__}"
    try:
        await asyncio.wait_for(deps.pool.fetchval("SELECT 1"), timeout=2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


routes = [
    Route("/webhooks/generic", generic_webhook, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]

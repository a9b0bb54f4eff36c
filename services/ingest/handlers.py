"""Ingest's HTTP routes: each request's headers and body stream go to the use case; its outcome becomes the answer."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pagerpatch.kernel import metrics
from services.ingest.providers import PROVIDERS
from services.ingest.usecase import (
    Accepted,
    Answered,
    IngestDeps,
    Outcome,
    Unavailable,
    readiness,
    receive_webhook,
)

UNAVAILABLE = {"error": "pagerpatch cannot accept this delivery right now; retry later"}


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def answer(outcome: Outcome) -> Response:
    """The HTTP answer to a webhook's outcome (statuses, headers and bodies are what providers depend on)."""
    if isinstance(outcome, Accepted):
        body: dict[str, Any] = {"event_id": str(outcome.event_id), "duplicate": outcome.duplicate}
        if len(outcome.event_ids) > 1:  # grouped notifications (Alertmanager, Grafana)
            body["event_ids"] = [str(i) for i in outcome.event_ids]
        return _json(body, outcome.status)
    if isinstance(outcome, Answered):
        return _json(dict(outcome.reply), 200)
    if isinstance(outcome, Unavailable):
        return _json(UNAVAILABLE, 503, {"Retry-After": str(outcome.retry_after_s)})
    return _json({"error": outcome.reason}, outcome.status)


async def webhook(request: Request) -> Response:
    deps: IngestDeps = request.app.state.deps
    started, name = time.monotonic(), request.path_params["provider"]
    outcome = await receive_webhook(deps, name, request.headers, request.stream())
    response = answer(outcome)
    metrics.webhook_answer(name if name in PROVIDERS else "unknown", response.status_code, time.monotonic() - started)
    return response


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"}, 200)


async def readyz(request: Request) -> Response:
    checks = await readiness(request.app.state.deps)
    ready = all(v == "ok" for v in checks.values())
    return _json({"ready": ready, **checks}, 200 if ready else 503)


async def metrics_page(request: Request) -> Response:
    """Prometheus' text format; rendered off the event loop (the consumer-lag collector may wait on a server)."""
    body, content_type = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=content_type)


routes = [
    Route("/webhooks/{provider}", webhook, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_page, methods=["GET"]),
]

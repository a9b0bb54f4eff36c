"""Ingest's HTTP routes: each request's headers and body stream go to the use case; its outcome becomes the answer."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
    outcome = await receive_webhook(deps, request.path_params["provider"], request.headers, request.stream())
    return answer(outcome)


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"}, 200)


async def readyz(request: Request) -> Response:
    checks = await readiness(request.app.state.deps)
    ready = all(v == "ok" for v in checks.values())
    return _json({"ready": ready, **checks}, 200 if ready else 503)


routes = [
    Route("/webhooks/{provider}", webhook, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]

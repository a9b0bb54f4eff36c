"""The console's routes (thin): who is asking (token by header, cookie or a `?token=` sign-in link), then the use
case, then its page. Every page needs the token when one is set; /healthz and the script do not."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from services.console import domain, incident_page, templates, usecase
from services.console.domain import Access, IncidentFilter
from services.console.script import SCRIPT
from services.console.usecase import ConsoleDeps

COOKIE = "pagerpatch_console"
TOKEN_HEADER = "x-pagerpatch-console-token"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # a ?token= link must not leak through a Referer
    "cache-control": "no-store",
}
MAX_FORM_BYTES = 16_384

Handler = Callable[[Request, Access], Awaitable[Response]]


def _deps(request: Request) -> ConsoleDeps:
    deps: ConsoleDeps = request.app.state.deps
    return deps


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status, headers=SECURITY_HEADERS)


def _credential(request: Request) -> tuple[str | None, bool]:
    """The token presented and whether it came in a header (a script) rather than the browser's cookie."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), True
    if TOKEN_HEADER in request.headers:
        return request.headers[TOKEN_HEADER], True
    return request.cookies.get(COOKIE), False


def _with_cookie(response: Response, request: Request, token: str) -> Response:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def guarded(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Refuse a foreign Host on an open console, answer a `?token=` link with the cookie, require the token."""

    async def route(request: Request) -> Response:
        cfg = _deps(request).cfg
        if not domain.host_allowed(cfg, request.headers.get("host", "")):
            return PlainTextResponse("this console answers on a loopback address only", 421)
        link = request.query_params.get("token")
        if link is not None and request.method == "GET":
            if domain.signed_in(cfg, link) is None:
                return _html(templates.login(request.url.path, "that token is not valid"), 401)
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            target = request.url.path + (f"?{rest}" if rest else "")
            return _with_cookie(RedirectResponse(target, 303, headers=SECURITY_HEADERS), request, link)
        presented, via_header = _credential(request)
        access = domain.resolve_access(cfg, presented, via_header=via_header)
        if not access.allowed:
            if via_header or "text/html" not in request.headers.get("accept", ""):
                return JSONResponse({"error": "a console token is required (PAGERPATCH_CONSOLE_TOKEN)"}, 401,
                                    headers={"www-authenticate": "Bearer"})  # fmt: skip
            return _html(templates.login(request.url.path), 401)
        return await fn(request, access)

    return route


async def index(request: Request, access: Access) -> Response:
    view = await usecase.incidents(_deps(request), IncidentFilter.from_query(request.query_params))
    return _html(templates.incidents(view, access))


async def incident_rows(request: Request, access: Access) -> Response:
    view = await usecase.incidents(_deps(request), IncidentFilter.from_query(request.query_params))
    return _html(templates.incident_rows(view.rows, view))


async def show_incident(request: Request, access: Access) -> Response:
    view = await usecase.incident(_deps(request), request.path_params["ref"], access)
    if view is None:
        return _html(templates.page("not found", "<h1>No such incident</h1>", access), 404)
    notice = request.query_params.get("notice", "")[:300]
    return _html(incident_page.incident(view, access, notice))


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}


async def decision(request: Request, access: Access) -> Response:
    form = await _form(request)
    choice = form.get("decision", "")
    if choice not in ("approve", "reject"):
        return JSONResponse({"error": "decision must be approve or reject"}, 400)
    if access.approver is not None and not domain.csrf_ok(_deps(request).cfg, access, form.get("csrf", "")):
        return JSONResponse({"error": "the form is stale or foreign (reload the page)"}, 403)
    which: Literal["approve", "reject"] = "approve" if choice == "approve" else "reject"
    ref = request.path_params["ref"]
    done = await usecase.decide(_deps(request), ref, which, form.get("reason", ""), access)
    if access.via_header:
        return JSONResponse({"message": done.message, "event_id": done.event_id, "duplicate": done.duplicate},
                            done.status)  # fmt: skip
    if done.status >= 400:
        return _html(templates.page("refused", f'<p class="problem">{templates.esc(done.message)}</p>', access),
                     done.status)  # fmt: skip
    return RedirectResponse(f"/incidents/{ref}?{urlencode({'notice': done.message})}", 303, headers=SECURITY_HEADERS)


async def events_page(request: Request, access: Access) -> Response:
    raw = request.query_params.get("subject")
    subject = domain.subject_filter(raw)
    if subject is None:
        return _html(templates.events(raw or "", access, "not a subject under pagerpatch."), 400)
    return _html(templates.events(subject, access))


async def events_stream(request: Request, access: Access) -> Response:
    subject = domain.subject_filter(request.query_params.get("subject"))
    if subject is None:
        return JSONResponse({"error": "subject must be under pagerpatch."}, 400)
    try:
        backlog = int(request.query_params.get("backlog", "0"))
    except ValueError:
        backlog = 0
    frames = usecase.live_events(_deps(request), subject, backlog)
    headers = {**SECURITY_HEADERS, "x-accel-buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


async def health_page(request: Request, access: Access) -> Response:
    return _html(templates.health(await usecase.health(_deps(request)), access))


async def costs_page(request: Request, access: Access) -> Response:
    try:
        days = int(request.query_params.get("days", "30"))
    except ValueError:
        days = 30
    return _html(templates.costs(await usecase.costs(_deps(request), days), access))


async def login_form(request: Request) -> Response:
    return _html(templates.login(request.query_params.get("next", "/")))


async def login(request: Request) -> Response:
    form = await _form(request)
    target = form.get("next", "/")
    target = target if target.startswith("/") and not target.startswith("//") else "/"
    if domain.signed_in(_deps(request).cfg, form.get("token", "")) is None:
        return _html(templates.login(target, "that token is not valid"), 401)
    return _with_cookie(RedirectResponse(target, 303, headers=SECURITY_HEADERS), request, form["token"])


async def logout(request: Request) -> Response:
    response = RedirectResponse("/", 303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE)
    return response


async def script(request: Request) -> Response:
    return Response(SCRIPT, media_type="text/javascript", headers={"cache-control": "no-cache"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


routes = [
    Route("/", guarded(index), methods=["GET"]),
    Route("/incidents/rows", guarded(incident_rows), methods=["GET"]),
    Route("/incidents/{ref}", guarded(show_incident), methods=["GET"]),
    Route("/incidents/{ref}/decision", guarded(decision), methods=["POST"]),
    Route("/events", guarded(events_page), methods=["GET"]),
    Route("/events/stream", guarded(events_stream), methods=["GET"]),
    Route("/health", guarded(health_page), methods=["GET"]),
    Route("/costs", guarded(costs_page), methods=["GET"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["GET"]),
    Route("/static/console.js", script, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]

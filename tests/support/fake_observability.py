"""A fake Prometheus + Loki: one real HTTP server on 127.0.0.1 answering `/api/v1/query_range` (GET and POST) and
`/loki/api/v1/query_range` in the APIs' own response formats (tests/fixtures/observability/, see SOURCES.md).

Every request is recorded (method, path, headers, parameters from the query string or the form body). Replies are
scripted per path, in order, else the path's default (the fixture answer); a reply may be delayed (timeouts).
Use it as a context manager: `with FakeObservability() as server: ... server.url`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.http_server import ThreadedServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "observability"
PROMETHEUS_PATH = "/api/v1/query_range"
LOKI_PATH = "/loki/api/v1/query_range"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_text(name))
    return data


@dataclass
class Answer:
    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    delay_s: float = 0.0


def json_answer(doc: dict[str, Any] | str, status: int = 200, delay_s: float = 0.0) -> Answer:
    """A JSON answer: a document, or the name of a fixture file."""
    body = fixture_text(doc) if isinstance(doc, str) else json.dumps(doc)
    return Answer(status, body, "application/json", delay_s)


def text_answer(body: str, status: int) -> Answer:
    return Answer(status, body, "text/plain; charset=utf-8")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]


@dataclass
class FakeObservability:
    requests: list[Seen] = field(default_factory=list)
    defaults: dict[str, Answer] = field(
        default_factory=lambda: {
            PROMETHEUS_PATH: json_answer("prometheus_query_range.json"),
            LOKI_PATH: json_answer("loki_query_range_streams.json"),
        }
    )
    url: str = ""
    _script: dict[str, deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: ThreadedServer | None = None

    def script(self, path: str, *answers: Answer) -> FakeObservability:
        with self._lock:
            self._script[path].extend(answers)
        return self

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def _answer(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(parse_qsl((await request.body()).decode()))  # a form body, as Prometheus reads it
        path = request.url.path
        with self._lock:
            self.requests.append(Seen(request.method, path, dict(request.headers), params))
            queue = self._script[path]
            answer = queue.popleft() if queue else self.defaults[path]
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    def start(self) -> FakeObservability:
        routes = [Route(p, self._answer, methods=["GET", "POST"]) for p in (PROMETHEUS_PATH, LOKI_PATH)]
        self._http = ThreadedServer(Starlette(routes=routes), "fake observability server")
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()

    def __enter__(self) -> FakeObservability:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

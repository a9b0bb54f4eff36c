"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 answering from a per-test script.

The real SDK talks to it through `base_url`. Every request (headers and JSON body) is recorded. Replies are
scripted in order: text, tool_use blocks, errors (429 with retry-after, 529 overloaded, 500…), delays; or a
callable that builds the reply from the request. Usage is computed from the request: ~len/4 tokens, and a
cache simulation: the prefix up to the last `cache_control` marker in tools + system is written on first sight
and read afterwards (the real API also requires a minimum prefix length; the fake does not).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_ids = itertools.count(1)


def estimate_tokens(obj: Any) -> int:
    """The fake's token count (and the benchmark's): serialized length / 4."""
    return max(1, len(json.dumps(obj, ensure_ascii=False, sort_keys=True)) // 4)


@dataclass
class Reply:
    status: int = 200
    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    output_tokens: int | None = None
    error_type: str | None = None
    error_message: str = ""


def text(t: str, **kw: Any) -> Reply:
    return Reply(content=[{"type": "text", "text": t}], stop_reason="end_turn", **kw)


def tool_use(name: str, input: dict[str, Any], *, id: str | None = None, **kw: Any) -> Reply:
    return tool_uses([(name, input, id)], **kw)


def tool_uses(calls: list[tuple[str, dict[str, Any], str | None]], *, say: str | None = None, **kw: Any) -> Reply:
    content: list[dict[str, Any]] = [{"type": "text", "text": say}] if say else []
    for name, args, cid in calls:
        content.append({"type": "tool_use", "id": cid or f"toolu_{next(_ids):06d}", "name": name, "input": args})
    return Reply(content=content, stop_reason="tool_use", **kw)


def error(
    status: int, error_type: str, message: str = "scripted error", *, retry_after: float | None = None, **kw: Any
) -> Reply:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return Reply(status=status, error_type=error_type, error_message=message, headers=headers, **kw)


def rate_limited(retry_after: float | None = None) -> Reply:
    return error(429, "rate_limit_error", "rate limited", retry_after=retry_after)


def overloaded() -> Reply:
    return error(529, "overloaded_error", "Overloaded")


def server_error() -> Reply:
    return error(500, "api_error", "Internal server error")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def text(self) -> str:
        """Everything the request carried, as one string (for "never received X" assertions)."""
        return json.dumps(self.body, ensure_ascii=False)


Script = Reply | Callable[[dict[str, Any]], Reply]


class FakeAnthropic:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Script] = deque()
        self._default: Script | None = None
        self._cache: set[str] = set()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ scripting
    def script(self, *replies: Script) -> FakeAnthropic:
        with self._lock:
            self._script.extend(replies)
        return self

    def always(self, reply: Script) -> FakeAnthropic:
        """The reply once the script is used up (default: a 500 saying the script ran out)."""
        self._default = reply
        return self

    @property
    def pending(self) -> int:
        return len(self._script)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            item = self._script.popleft() if self._script else self._default
        if item is None:
            return error(500, "api_error", "fake server: the test's script is used up")
        return item(body) if callable(item) else item

    # ------------------------------------------------------------------ HTTP
    async def _messages(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self._lock:
            self.requests.append(Recorded(request.url.path, dict(request.headers), body, time.monotonic()))
        reply = self._next(body)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            return JSONResponse(
                {"type": "error", "error": {"type": reply.error_type or "api_error", "message": reply.error_message}},
                status_code=reply.status,
                headers={"request-id": f"req_{next(_ids)}", **reply.headers},
            )
        return JSONResponse(self._message(body, reply), headers={"request-id": f"req_{next(_ids)}", **reply.headers})

    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        total = estimate_tokens({k: body.get(k) for k in ("system", "messages", "tools")})
        cached = self._cached_prefix(body)
        write = read = 0
        if cached is not None:
            key, tokens = cached
            with self._lock:
                if key in self._cache:
                    read = tokens
                else:
                    self._cache.add(key)
                    write = tokens
        out = reply.output_tokens if reply.output_tokens is not None else estimate_tokens(reply.content)
        return {
            "id": f"msg_{next(_ids):08d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": reply.content,
            "stop_reason": reply.stop_reason or "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": max(1, total - write - read),
                "output_tokens": out,
                "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
            },
        }

    @staticmethod
    def _cached_prefix(body: dict[str, Any]) -> tuple[str, int] | None:
        prefix: list[Any] = []
        marked: list[Any] | None = None
        for tool in body.get("tools") or []:
            prefix.append(tool)
            if "cache_control" in tool:
                marked = list(prefix)
        system = body.get("system")
        for block in system if isinstance(system, list) else []:
            prefix.append(block)
            if "cache_control" in block:
                marked = list(prefix)
        if marked is None:
            return None
        key = hashlib.sha256(json.dumps([body.get("model"), marked], sort_keys=True).encode()).hexdigest()
        return key, estimate_tokens(marked)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeAnthropic:
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Anthropic server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A fresh fake Messages API server for one test (`.url` for base_url, `.script(...)`, `.requests`)."""
    server = FakeAnthropic().start()
    try:
        yield server
    finally:
        server.stop()

"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 answering from a per-test script.

The real SDK talks to it through `base_url`. Every request (headers and JSON body) is recorded. Replies are
scripted in order: text, tool_use blocks, errors (429 with retry-after, 529 overloaded, 500…), delays; or a
callable that builds the reply from the request. Usage is computed from the request: ~len/4 tokens, and a
prompt-cache simulation following the Messages API's rules:

- the prompt is one sequence of blocks in the order tools -> system -> messages (each tool, system block and
  message content block is a block; a message's string content is one text block);
- a `cache_control` marker on a block makes the prefix up to and including it a cache entry (at most 4 markers,
  more is a 400 like the real API); markers themselves are not part of the cached content;
- a request reads the longest previously written entry found at or up to 20 blocks before one of its markers
  (`cache_read_input_tokens`) and writes the prefixes of its markers past it (`cache_creation_input_tokens`, up
  to its last marker); the rest is `input_tokens`;
- entries live 5 minutes (`ttl_s`), refreshed by each read, per model; a prefix shorter than
  `min_cacheable_tokens` (0 by default; the real API's is 1024+ depending on the model) is neither written nor read.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.http_server import ThreadedServer

_ids = itertools.count(1)
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20


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
    def __init__(self, *, min_cacheable_tokens: int = 0, ttl_s: float = 300.0) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Script] = deque()
        self._default: Script | None = None
        self.min_cacheable_tokens = min_cacheable_tokens
        self.ttl_s = ttl_s
        self._cache: dict[str, float] = {}  # prefix hash -> expiry (time.monotonic())
        self._lock = threading.Lock()
        self._http: ThreadedServer | None = None
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
        markers = len(prompt_blocks(body)[1])
        if markers > MAX_BREAKPOINTS:  # the real API refuses the request
            message = f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {markers}."
            return JSONResponse(
                {"type": "error", "error": {"type": "invalid_request_error", "message": message}}, status_code=400
            )
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
        out = reply.output_tokens if reply.output_tokens is not None else estimate_tokens(reply.content)
        return {
            "id": f"msg_{next(_ids):08d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": reply.content,
            "stop_reason": reply.stop_reason or "end_turn",
            "stop_sequence": None,
            "usage": {**self.usage(body), "output_tokens": out},
        }

    def usage(self, body: dict[str, Any]) -> dict[str, int]:
        """The prompt's usage as the cache simulation counts it (and records: later calls read what this wrote)."""
        total = estimate_tokens({k: body.get(k) for k in ("system", "messages", "tools")})
        blocks, marks = prompt_blocks(body)
        hashes, tokens = [], []
        running = hashlib.sha256(json.dumps(body.get("model")).encode()).hexdigest()
        chars = 0
        for *place, block in blocks:
            canon = json.dumps(block, sort_keys=True, ensure_ascii=False)
            running = hashlib.sha256((running + json.dumps(place) + canon).encode()).hexdigest()
            chars += len(canon) + 2
            hashes.append(running)
            tokens.append(chars // 4)
        marks = [m for m in marks if tokens[m] >= self.min_cacheable_tokens]
        read = write = 0
        if marks:
            now = time.monotonic()
            with self._lock:
                hit = -1
                for mark in marks:
                    for i in range(mark, max(-1, mark - LOOKBACK_BLOCKS), -1):
                        if i > hit and self._cache.get(hashes[i], 0.0) > now:
                            hit = i
                            break
                if hit >= 0:
                    read = tokens[hit]
                    self._cache[hashes[hit]] = now + self.ttl_s
                for mark in marks:
                    if mark > hit:
                        self._cache[hashes[mark]] = now + self.ttl_s
            write = max(0, tokens[marks[-1]] - read) if marks[-1] > hit else 0
            read = min(read, total - 1)
            write = min(write, total - 1 - read)
        return {
            "input_tokens": max(1, total - write - read),
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeAnthropic:
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        self._http = ThreadedServer(app, "fake Anthropic server")
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()


def prompt_blocks(body: dict[str, Any]) -> tuple[list[list[Any]], list[int]]:
    """The prompt as the cache sees it: blocks in the order tools -> system -> messages (without their markers,
    each with its place: section, message index and role), and the indexes of the blocks that carry a marker."""
    blocks: list[list[Any]] = []
    marks: list[int] = []

    def add(place: list[Any], block: Any) -> None:
        if isinstance(block, dict) and "cache_control" in block:
            marks.append(len(blocks))
            block = {k: v for k, v in block.items() if k != "cache_control"}
        blocks.append([*place, block])

    for tool in body.get("tools") or []:
        add(["tools"], tool)
    system = body.get("system")
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system or []:
        add(["system"], block)
    for n, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content or []:
            add(["messages", n, message.get("role")], block)
    return blocks, marks


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A fresh fake Messages API server for one test (`.url` for base_url, `.script(...)`, `.requests`)."""
    server = FakeAnthropic().start()
    try:
        yield server
    finally:
        server.stop()

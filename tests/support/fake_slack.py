"""A fake Slack Web API: a real HTTP server on 127.0.0.1 that slack_sdk talks to through `base_url`.

Methods: `auth.test`, `chat.postMessage`, `chat.update`, `conversations.history` and `conversations.replies`
(with message metadata when `include_all_metadata` is set). Answers take the shapes of the recorded responses
in tests/fixtures/apis/slack (SOURCES.md there): `chat.postMessage` answers like the recorded nyaruka/courier
response (thread replies like the coreeng/support-bot one), `chat.update` like Slack's own spec example, and the
error codes are the ones Slack's error schemas list (plus `ratelimited`, the HTTP 429 answer).

Failure injection per method: `fail(method, error)` (an `ok: false` answer), `rate_limit(method, retry_after)`
(HTTP 429 with `Retry-After`), `server_error(method)` (HTTP 500), `answer_late(method, delay_s)` (performed, then
answered after the client's timeout). `DroppingProxy` in front of it loses the answer to a performed call (the
connection closes without one). Every call is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.http_server import ThreadedServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apis" / "slack"
TOKEN = "xoxb-pagerpatch-test"
BOT_USER, BOT_ID, APP_ID, TEAM = "U0PPBOT01", "B0PPBOT01", "A0PPAPP01", "T0PPTEAM1"


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def documented_errors(method: str) -> set[str]:
    """The error codes Slack's spec lists for a method (`chat.postMessage`, `chat.update`)."""
    schema = _fixture(f"{method}.error.schema.json")
    return set(schema["properties"]["error"]["enum"])


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    status: int
    error: str | None


@dataclass
class Message:
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    metadata: dict[str, Any] | None
    edited: int = 0  # how many times chat.update changed it


@dataclass
class Channel:
    id: str
    name: str
    member: bool = True  # the bot is in the channel (else not_in_channel)
    messages: list[Message] = field(default_factory=list)


@dataclass
class _Fault:
    status: int
    error: str
    headers: dict[str, str]
    delay_s: float = 0.0  # > 0: the call is performed, its answer sent this late


class FakeSlack:
    def __init__(self, channels: dict[str, str] | None = None, token: str = TOKEN) -> None:
        self.token = token
        self.channels: dict[str, Channel] = {}
        for cid, name in (channels or {"C0PPINC01": "incidents"}).items():
            self.add_channel(cid, name)
        self.calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._clock = itertools.count(1)
        self._lock = threading.Lock()
        self._http: ThreadedServer | None = None
        self.url = ""
        self._post_template = _fixture("chat.postMessage.nyaruka-courier.json")
        self._reply_template = _fixture("chat.postMessage.thread-reply.coreeng-support-bot.json")
        self._update_template = _fixture("chat.update.200.example.json")

    # ------------------------------------------------------------------ set-up and injection
    @property
    def api_url(self) -> str:
        """What `slack.api_url` is set to (slack_sdk's base_url ends with a slash)."""
        return f"{self.url}/api/"

    def add_channel(self, cid: str, name: str, *, member: bool = True) -> Channel:
        self.channels[cid] = Channel(cid, name, member)
        return self.channels[cid]

    def fail(self, method: str, error: str, *, times: int = 1) -> FakeSlack:
        return self._inject(method, _Fault(200, error, {}), times)

    def rate_limit(self, method: str, retry_after: int = 1, *, times: int = 1) -> FakeSlack:
        return self._inject(method, _Fault(429, "ratelimited", {"Retry-After": str(retry_after)}), times)

    def server_error(self, method: str, *, times: int = 1) -> FakeSlack:
        return self._inject(method, _Fault(500, "fatal_error", {}), times)

    def answer_late(self, method: str, delay_s: float, *, times: int = 1) -> FakeSlack:
        """The next `times` calls of `method` are performed (a post is in the channel), answered after `delay_s`."""
        return self._inject(method, _Fault(200, "", {}, delay_s), times)

    def _inject(self, method: str, fault: _Fault, times: int) -> FakeSlack:
        with self._lock:
            self._faults.setdefault(method, deque()).extend([fault] * times)
        return self

    # ------------------------------------------------------------------ reading what happened
    def called(self, method: str, *, ok_only: bool = True) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (c.error is None or not ok_only)]

    def messages(self, channel: str = "C0PPINC01", *, roots: bool = False) -> list[Message]:
        with self._lock:
            found = list(self.channels[channel].messages)
        return [m for m in found if m.thread_ts is None] if roots else found

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts]

    def message(self, channel: str, ts: str) -> Message:
        return next(m for m in self.messages(channel) if m.ts == ts)

    # ------------------------------------------------------------------ HTTP
    async def _api(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params = await _params(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() or params.get("token")
        with self._lock:
            queue = self._faults.get(method)
            fault = queue.popleft() if queue else None
        late = fault.delay_s if fault is not None else 0.0
        if late:
            fault = None
        if fault is None and token != self.token:
            fault = _Fault(200, "not_authed" if not token else "invalid_auth", {})
        if fault is not None:
            return self._answer(method, params, token, fault.status, {"ok": False, "error": fault.error}, fault.headers)
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
        }.get(method)
        if handler is None:
            return self._answer(method, params, token, 200, {"ok": False, "error": "unknown_method"})
        with self._lock:
            body = handler(params)
        if late:
            await asyncio.sleep(late)  # Slack acted; the client has given up waiting for this answer
        return self._answer(method, params, token, 200, body)

    def _answer(
        self,
        method: str,
        params: dict[str, Any],
        token: str | None,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        error = None if body.get("ok") else str(body.get("error"))
        with self._lock:
            self.calls.append(Call(method, params, token, status, error))
        return JSONResponse(
            body, status_code=status, headers={"X-Slack-Req-Id": f"req{next(self._clock)}", **(headers or {})}
        )

    def _channel(self, ref: Any) -> Channel | None:
        ref = str(ref or "").lstrip("#")
        return self.channels.get(ref) or next((c for c in self.channels.values() if c.name == ref), None)

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://pagerpatch-test.slack.com/",
            "team": "pagerpatch test",
            "user": "pagerpatch",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not channel.member:
            return {"ok": False, "error": "not_in_channel"}
        text, blocks = params.get("text") or "", _json_param(params.get("blocks")) or []
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        thread = params.get("thread_ts")
        if thread and not any(m.ts == thread for m in channel.messages):
            return {"ok": False, "error": "thread_not_found"}
        ts = f"{1_700_000_000 + next(self._clock)}.{next(self._clock):06d}"
        msg = Message(ts, text, blocks, thread, _json_param(params.get("metadata")))
        channel.messages.append(msg)
        template = self._reply_template if thread else self._post_template
        body: dict[str, Any] = json.loads(json.dumps(template))
        body.update(channel=channel.id, ts=ts)
        body["message"].update(ts=ts, text=text, blocks=blocks, bot_id=BOT_ID, user=BOT_USER, app_id=APP_ID)
        body["message"].pop("attachments", None)
        if thread:
            body["message"].update(thread_ts=thread, parent_user_id=BOT_USER)
        return body

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        msg = next((m for m in channel.messages if m.ts == params.get("ts")), None)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if "text" in params:
            msg.text = params["text"] or ""
        if "blocks" in params:
            msg.blocks = _json_param(params["blocks"]) or []
        msg.edited += 1
        body: dict[str, Any] = json.loads(json.dumps(self._update_template))
        body.update(channel=channel.id, ts=msg.ts, text=msg.text)
        body["message"] = {"text": msg.text, "user": BOT_USER, "blocks": msg.blocks}
        return body

    def _listing(self, messages: list[Message], params: dict[str, Any]) -> dict[str, Any]:
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        start = int(params.get("cursor") or 0)
        page = messages[start : start + limit]
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        out = []
        for m in page:
            item: dict[str, Any] = {
                "type": "message",
                "user": BOT_USER,
                "bot_id": BOT_ID,
                "text": m.text,
                "ts": m.ts,
                "blocks": m.blocks,
            }
            if m.thread_ts:
                item["thread_ts"] = m.thread_ts
            if with_meta and m.metadata:
                item["metadata"] = m.metadata
            out.append(item)
        more = start + limit < len(messages)
        return {
            "ok": True,
            "messages": out,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel")))  # an id, as Slack requires here
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not channel.member:
            return {"ok": False, "error": "not_in_channel"}
        top = [m for m in reversed(channel.messages) if m.thread_ts is None or m.thread_ts == m.ts]  # newest first
        return self._listing(top, params)

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = next((m for m in channel.messages if m.ts == params.get("ts")), None)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        thread = [parent, *[m for m in channel.messages if m.thread_ts == parent.ts]]  # oldest first, parent first
        return self._listing(thread, params)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSlack:
        app = Starlette(routes=[Route("/api/{method}", self._api, methods=["GET", "POST"])])
        self._http = ThreadedServer(app, "fake Slack server")
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()


async def _params(request: Request) -> dict[str, Any]:
    """Query string, then a JSON or form body (slack_sdk sends blocks as JSON, other methods as a form)."""
    params: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return params
    if request.headers.get("content-type", "").startswith("application/json"):
        body = json.loads(raw)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
    return params


def _json_param(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


class DroppingProxy:
    """A TCP proxy in front of a fake Slack that forwards every request, but for the next `times` calls of `method`
    closes the client's connection without the answer: Slack acted, the client sees `RemoteDisconnected`."""

    def __init__(self, upstream: FakeSlack, method: str, *, times: int = 1) -> None:
        host, port = upstream.url.removeprefix("http://").split(":")
        self.upstream, self.method, self.left = (host, int(port)), f"/api/{method} ", times
        self.dropped = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/api/"

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:  # closed by __exit__
                return
            with client:
                self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += client.recv(65536)
        head, _, body = request.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        while len(body) < length:
            body += client.recv(65536)
        with socket.create_connection(self.upstream) as up:  # urllib asks for `Connection: close`
            up.sendall(head + b"\r\n\r\n" + body)
            answer = b"".join(iter(lambda: up.recv(65536), b""))
        if self.method.encode() in head.split(b"\r\n")[0] and self.left > 0:
            self.left -= 1
            self.dropped += 1
            return  # closed with no answer
        client.sendall(answer)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fresh fake Slack for one test: channel `C0PPINC01` (#incidents), token `TOKEN`; `.api_url` for base_url."""
    server = FakeSlack().start()
    try:
        yield server
    finally:
        server.stop()

"""A fake Linear GraphQL API: a real HTTP server on 127.0.0.1 answering `POST /graphql`.

It understands the operations pagerpatch sends, by root field: `teams(filter: {key: {eq: $key}})`,
`issues(filter: {team: {key: {eq: $team}}, description: {contains: $marker}})` and `issueCreate(input: $input)`,
and answers in the shapes of tests/fixtures/apis/linear/graphql_responses.json (built from Linear's documented
schema; no recorded response exists). Failure injection: `fail(kind)` with a GraphQL error of that fixture
(`authentication_error`, `invalid_input`, `ratelimited`, the last with HTTP 429 and `Retry-After`),
`server_error()`, `answer_late(operation, delay_s)` (performed, answered after the client's timeout). A wrong
`Authorization` key answers `authentication error`. Every request is in `calls`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.http_server import ThreadedServer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "apis" / "linear" / "graphql_responses.json"
API_KEY = "lin_api_pagerpatch_test"


@dataclass
class GraphqlCall:
    operation: str  # "teams", "issues", "issueCreate" or "unknown"
    variables: dict[str, Any]
    status: int


@dataclass
class Issue:
    id: str
    identifier: str
    team_key: str
    title: str
    description: str
    url: str


class FakeLinear:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.shapes: dict[str, Any] = json.loads(FIXTURE.read_text())
        self.teams: dict[str, dict[str, Any]] = {t["key"]: t for t in self.shapes["teams"]["data"]["teams"]["nodes"]}
        self.issues: list[Issue] = []
        self.calls: list[GraphqlCall] = []
        self._faults: deque[tuple[int, str, dict[str, str]]] = deque()
        self._numbers = itertools.count(1)
        self._late: dict[str, float] = {}  # operation -> delay of its next answer
        self._lock = threading.Lock()
        self._http: ThreadedServer | None = None
        self.url = ""

    @property
    def api_url(self) -> str:
        return f"{self.url}/graphql"

    def add_team(self, key: str, name: str = "") -> None:
        self.teams[key] = {"id": str(uuid.uuid4()), "key": key, "name": name or key}

    def fail(self, kind: str, *, times: int = 1, retry_after: int = 1) -> FakeLinear:
        status, headers = (429, {"Retry-After": str(retry_after)}) if kind == "ratelimited" else (400, {})
        with self._lock:
            self._faults.extend([(status, kind, headers)] * times)
        return self

    def server_error(self, *, times: int = 1) -> FakeLinear:
        with self._lock:
            self._faults.extend([(500, "", {})] * times)
        return self

    def answer_late(self, operation: str, delay_s: float) -> FakeLinear:
        """The next `operation` ("issueCreate", ...) is performed, then answered after `delay_s`."""
        with self._lock:
            self._late[operation] = delay_s
        return self

    def operations(self, name: str) -> list[GraphqlCall]:
        with self._lock:
            return [c for c in self.calls if c.operation == name and c.status == 200]

    async def _graphql(self, request: Request) -> JSONResponse:
        body = await request.json()
        query, variables = str(body.get("query") or ""), dict(body.get("variables") or {})
        operation = next((op for op in ("issueCreate", "teams", "issues") if f"{op}(" in query), "unknown")
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is None and request.headers.get("authorization") != self.api_key:
            fault = (400, "authentication_error", {})
        if fault is not None:
            status, kind, headers = fault
            answer = self.shapes[kind] if kind else {"errors": [{"message": "Internal server error"}]}
            return self._answer(operation, variables, status, answer, headers)
        with self._lock:
            data = self._handle(operation, variables)
            late = self._late.pop(operation, 0.0)
        if late:
            await asyncio.sleep(late)  # Linear acted; the client has given up waiting for this answer
        return self._answer(operation, variables, 200 if "data" in data else 400, data)

    def _answer(
        self,
        operation: str,
        variables: dict[str, Any],
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        with self._lock:
            self.calls.append(GraphqlCall(operation, variables, status))
        return JSONResponse(body, status_code=status, headers=headers or {})

    def _handle(self, operation: str, variables: dict[str, Any]) -> dict[str, Any]:
        if operation == "teams":
            nodes = [t for k, t in self.teams.items() if k == variables.get("key")]
            return {"data": {"teams": {"nodes": nodes}}}
        if operation == "issues":
            found = [
                i
                for i in self.issues
                if i.team_key == variables.get("team") and str(variables.get("marker")) in i.description
            ]
            answer: dict[str, Any] = copy.deepcopy(self.shapes["issues_empty"])
            answer["data"]["issues"]["nodes"] = [self._node(i) for i in found]
            return answer
        if operation == "issueCreate":
            data = variables.get("input") or {}
            team = next((k for k, t in self.teams.items() if t["id"] == data.get("teamId")), None)
            if team is None:
                invalid: dict[str, Any] = copy.deepcopy(self.shapes["invalid_input"])
                return invalid
            number = next(self._numbers)
            issue = Issue(
                str(uuid.uuid4()),
                f"{team}-{number}",
                team,
                str(data.get("title") or ""),
                str(data.get("description") or ""),
                f"https://linear.app/pagerpatch/issue/{team}-{number}",
            )
            self.issues.append(issue)
            created: dict[str, Any] = copy.deepcopy(self.shapes["issue_create"])
            created["data"]["issueCreate"]["issue"] = self._node(issue)
            return created
        return {"errors": [{"message": "Cannot query this field", "extensions": {"type": "graphql error"}}]}

    def _node(self, issue: Issue) -> dict[str, Any]:
        node = dict(self.shapes["issue_node"])
        node.update(id=issue.id, identifier=issue.identifier, title=issue.title, url=issue.url)
        return node

    def start(self) -> FakeLinear:
        app = Starlette(routes=[Route("/graphql", self._graphql, methods=["POST"])])
        self._http = ThreadedServer(app, "fake Linear server")
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()


@pytest.fixture
def fake_linear() -> Iterator[FakeLinear]:
    """A fresh fake Linear for one test: team `PAY`, key `API_KEY`; `.api_url` for `linear.api_url`."""
    server = FakeLinear().start()
    try:
        yield server
    finally:
        server.stop()

"""Linear GraphQL adapter (httpx): the team by key, the incident's issue by its id, and `issueCreate`.

Errors follow Linear's SDK (`errors[].extensions.type`): HTTP 429 / `ratelimited` / 5xx are `Transient` with
`Retry-After` when given; `authentication error`, `forbidden`, `invalid input` and the rest are `Rejected`.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from pagerpatch.kernel.errors import Transient
from pagerpatch.settings import LinearSettings
from services.notifier import domain_linear
from services.notifier.domain_slack import retry_after_s
from services.notifier.outbox import Rejected, Remote
from services.notifier.thread_facts import incident_label

TEAM_QUERY = "query PagerpatchTeam($key: String!) { teams(filter: {key: {eq: $key}}) { nodes { id key name } } }"
FIND_QUERY = """query PagerpatchIssue($team: String!, $marker: String!) {
  issues(filter: {team: {key: {eq: $team}}, description: {contains: $marker}}, first: 5) {
    nodes { id identifier url title }
  }
}"""
CREATE_MUTATION = """mutation PagerpatchIssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url title } }
}"""


class LinearGraphql:
    def __init__(self, settings: LinearSettings) -> None:
        self.url = settings.api_url
        self.key = settings.api_key.get_secret_value() if settings.api_key else ""
        self.timeout_s = settings.timeout_s
        self._teams: dict[str, str] = {}  # key -> id

    async def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(
                    self.url,
                    json={"query": query, "variables": variables},
                    headers={"Authorization": self.key, "Content-Type": "application/json"},
                )
        except httpx.HTTPError as exc:  # connection refused, timeouts
            raise Transient(f"Linear: {type(exc).__name__}: {exc}", retry_after_s=2.0) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        errors = [e for e in (body.get("errors") or []) if isinstance(e, dict)] if isinstance(body, dict) else []
        verdict = domain_linear.error_class(response.status_code, errors)
        reason = domain_linear.error_reason(response.status_code, errors)
        if verdict == "wait":
            wait = retry_after_s(dict(response.headers), default=5.0)
            raise Transient(f"{reason}; retrying in {wait:g}s", retry_after_s=wait)
        if verdict == "terminal":
            raise Rejected(reason)
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    async def team_id(self, key: str) -> str:
        if key not in self._teams:
            data = await self._query(TEAM_QUERY, {"key": key})
            nodes = (data.get("teams") or {}).get("nodes") or []
            if not nodes:
                raise Rejected(f"Linear: no team with key {key!r} (linear.teams)")
            self._teams[key] = str(nodes[0]["id"])
        return self._teams[key]

    async def find_issue(self, team_key: str, incident_id: uuid.UUID) -> Remote | None:
        data = await self._query(FIND_QUERY, {"team": team_key, "marker": incident_label(incident_id)})
        nodes = (data.get("issues") or {}).get("nodes") or []
        if not nodes:
            return None
        node = nodes[0]
        return Remote(id=str(node["id"]), url=str(node.get("url") or ""), detail={"identifier": node.get("identifier")})

    async def create_issue(self, team_key: str, title: str, description: str) -> Remote:
        team = await self.team_id(team_key)
        data = await self._query(
            CREATE_MUTATION, {"input": {"teamId": team, "title": title, "description": description}}
        )
        result = data.get("issueCreate") or {}
        issue = result.get("issue")
        if not result.get("success") or not isinstance(issue, dict):
            raise Rejected("Linear: issueCreate did not succeed")
        return Remote(
            id=str(issue["id"]), url=str(issue.get("url") or ""), detail={"identifier": issue.get("identifier")}
        )

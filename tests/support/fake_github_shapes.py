"""The recorded GitHub answers the fake GitHub fills in (tests/fixtures/apis/github, provenance in SOURCES.md there)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apis" / "github"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    headers: list[tuple[str, str]]
    body: Any


def replay(name: str) -> list[Exchange]:
    """PyGithub's ReplayData format: 11 lines per exchange (see tests/fixtures/apis/github/SOURCES.md)."""
    lines = (FIXTURES / name).read_text().split("\n")
    out = []
    for i in range(0, len(lines) - 9, 11):
        body = lines[i + 9]
        out.append(Exchange(lines[i + 1], lines[i + 4], int(lines[i + 7]), ast.literal_eval(lines[i + 8]),
                            json.loads(body) if body.strip() else None))  # fmt: skip
    return out


def _octokit(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    return data


class Templates:
    """The recorded bodies the fake fills in."""

    def __init__(self) -> None:
        flow = replay("GitRef.testExample.txt")
        self.repo = _octokit("get-repository.normalized.json")[0]["response"]
        self.ref = flow[1].body
        self.tree = flow[3].body
        self.commit = flow[5].body
        self.blob = replay("Repository.testCreateGitBlob.txt")[0].body
        pr = replay("PullRequest.testConvertToDraft.txt")[0]
        self.pull, self.rate_headers = pr.body, [(k, v) for k, v in pr.headers if k.lower().startswith("x-ratelimit")]
        self.label = _octokit("add-labels-to-issue.normalized.json")[1]["response"][0]
        self.content = replay("Repository.testUpdateFile.txt")[0].body
        self.bad_credentials = replay("SpecificExceptions.testBadCredentials.txt")[0].body
        abuse = replay("SpecificExceptions.testAuthenticatedRateLimitExceeded.record2-of-2.txt")[0]
        self.secondary_limit = (abuse.body, [(k, v) for k, v in abuse.headers if k.lower() == "retry-after"])
        self.pr_exists = json.loads((FIXTURES / "pulls_create_422_already_exists.the-power-175.json").read_text())
        self.ref_exists = json.loads(
            (FIXTURES / "git_refs_create_422_reference_already_exists.the-power-16.json").read_text()
        )
        self.no_pulls = replay("PullRequest.testDeleteBranch.txt")[1].body  # [] (GET /pulls?head=...)


@dataclass
class Injected:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    delay_s: float


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: str


@dataclass
class FakeRepo:
    full_name: str
    bare: Path
    default_branch: str
    pulls: list[dict[str, Any]] = field(default_factory=list)


def _git(repo: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, env=full_env, check=True)
    return proc.stdout.decode()

"""In-memory notifier ports with the real ones' semantics (idempotent scm and stores), for unit tests and evals."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from pagerpatch.git.repos import MemoryRepos as MemoryRepos  # the registry port, shared by every stage
from pagerpatch.scm import PushedBranch
from pagerpatch.settings import RepoConfig
from services.notifier.domain import PullRequest


@dataclass
class MemoryScm:
    """Branches in a dict. Like LocalGitScm, the commit is a function of its inputs and a branch already at it is
    left alone; `pushes` lists the pushes that moved a branch. `failures` makes the next pushes raise (an outage)."""

    provider: str = "memory"
    branches: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, branch) -> head commit
    pushes: list[tuple[str, str, str]] = field(default_factory=list)  # (repo, branch, head commit)
    messages: dict[str, str] = field(default_factory=dict)  # head commit -> its commit message
    failures: int = 0

    def push_fix(
        self, repo: RepoConfig, *, branch: str, base_commit: str, patch: str, message: str, when: datetime
    ) -> PushedBranch:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError(f"memory scm: push of {branch} to {repo.name} failed")
        head = hashlib.sha1(f"{base_commit}\0{patch}\0{message}\0{when.isoformat()}".encode()).hexdigest()
        self.messages[head] = message
        already_there = self.branches.get((repo.name, branch)) == head
        if not already_there:
            self.branches[(repo.name, branch)] = head
            self.pushes.append((repo.name, branch, head))
        remote = f"memory://{repo.name}"
        return PushedBranch(
            remote=remote, branch=branch, head_commit=head, url=f"{remote}?branch={branch}", already_there=already_there
        )


@dataclass
class MemoryPullRequests:
    """Pull request records by incident: `intents` before the push, `records` once completed (the first wins).

    `failures` makes the next `record` calls raise (the store went away after the push).
    """

    records: dict[uuid.UUID, tuple[int, PullRequest]] = field(default_factory=dict)
    intents: dict[uuid.UUID, PullRequest] = field(default_factory=dict)
    failures: int = 0

    async def intend(self, incident_id: uuid.UUID, pr: PullRequest) -> None:
        if incident_id not in self.records:
            self.intents.setdefault(incident_id, pr)

    async def record(self, incident_id: uuid.UUID, pr: PullRequest) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError(111, "memory store: connection refused")
        if incident_id not in self.records:
            self.intents.pop(incident_id, None)
            self.records[incident_id] = (len(self.records) + 1, pr)
        return self.records[incident_id][0]


@dataclass(frozen=True)
class SentNotification:
    about: uuid.UUID
    channel: str
    kind: str
    text: str
    incident_id: uuid.UUID | None


@dataclass
class MemoryNotifications:
    """Notifications in the order written, once per (event, channel, kind)."""

    sent: list[SentNotification] = field(default_factory=list)

    async def notify(
        self, *, about: uuid.UUID, kind: str, text: str, incident_id: uuid.UUID | None, channel: str = "log"
    ) -> bool:
        if any((n.about, n.channel, n.kind) == (about, channel, kind) for n in self.sent):
            return False
        self.sent.append(SentNotification(about, channel, kind, text, incident_id))
        return True

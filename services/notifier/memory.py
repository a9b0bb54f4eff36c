"""In-memory notifier ports with the real ones' semantics (idempotent scm and stores), for unit tests and evals."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pagerpatch.git.repos import MemoryRepos as MemoryRepos  # the registry port, shared by every stage
from pagerpatch.incidents import TERMINAL
from pagerpatch.scm import PushedBranch
from pagerpatch.settings import RepoConfig
from services.notifier.domain import PullRequest
from services.notifier.outbox import DONE, FAILED, PENDING, OutboxEntry, Remote
from services.notifier.thread_facts import Patch, ThreadState, merge


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
    states: dict[uuid.UUID, str] = field(default_factory=dict)  # forge states set by pr.event (merged, closed)
    failures: int = 0

    async def intend(self, incident_id: uuid.UUID, pr: PullRequest) -> None:
        if incident_id not in self.records:
            self.intents.setdefault(incident_id, pr)

    async def record(self, incident_id: uuid.UUID, pr: PullRequest) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError(111, "memory store: connection refused")
        if incident_id not in self.records:
            self.intents.pop(incident_id, None)
            self.records[incident_id] = (len(self.records) + 1, pr)

    async def incident_for(self, *, provider: str, branch: str, number: int | None) -> uuid.UUID | None:
        for incident_id, (_, pr) in self.records.items():
            if pr.provider == provider and (pr.branch == branch or (not branch and pr.number == number)):
                return incident_id
        return None

    async def set_state(self, incident_id: uuid.UUID, state: str) -> None:
        self.states[incident_id] = state


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


@dataclass
class MemoryOutbox:
    """Outbox rows in a dict, with PgOutbox's semantics (the first `done` wins; `fail` leaves a done row alone)."""

    rows: dict[tuple[uuid.UUID, str, str], OutboxEntry] = field(default_factory=dict)

    async def get(self, incident_id: uuid.UUID, kind: str, target: str) -> OutboxEntry | None:
        return self.rows.get((incident_id, kind, target))

    async def begin(self, incident_id: uuid.UUID, kind: str, target: str) -> None:
        key = (incident_id, kind, target)
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = OutboxEntry(incident_id, kind, target, PENDING, attempts=1, updated_at=_now())
        elif row.state != DONE:
            self.rows[key] = replace(row, state=PENDING, attempts=row.attempts + 1, updated_at=_now())

    async def done(self, incident_id: uuid.UUID, kind: str, target: str, remote: Remote) -> OutboxEntry:
        key = (incident_id, kind, target)
        row = self.rows.get(key) or OutboxEntry(incident_id, kind, target, PENDING, attempts=1)
        if row.state != DONE:
            row = replace(
                row, state=DONE, remote_id=remote.id, remote_url=remote.url, detail={**row.detail, **remote.detail},
                last_error=None, updated_at=_now(),
            )  # fmt: skip
            self.rows[key] = row
        return row

    async def fail(self, incident_id: uuid.UUID, kind: str, target: str, reason: str) -> None:
        key = (incident_id, kind, target)
        row = self.rows.get(key) or OutboxEntry(incident_id, kind, target, PENDING, attempts=1)
        if row.state != DONE:
            self.rows[key] = replace(row, state=FAILED, last_error=reason, updated_at=_now())

    async def attempt_failed(self, incident_id: uuid.UUID, kind: str, target: str, error: str) -> None:
        key = (incident_id, kind, target)
        row = self.rows.get(key)
        if row is not None and row.state == PENDING:
            self.rows[key] = replace(row, last_error=error, updated_at=_now())

    async def update_detail(self, incident_id: uuid.UUID, kind: str, target: str, detail: dict[str, Any]) -> None:
        key = (incident_id, kind, target)
        row = self.rows.get(key)
        if row is not None:
            self.rows[key] = replace(row, detail={**row.detail, **detail}, updated_at=_now())

    async def entries(self, incident_id: uuid.UUID) -> list[OutboxEntry]:
        return [row for (incident, _, _), row in self.rows.items() if incident == incident_id]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MemoryThreads:
    """Thread facts by incident, with PgThreads' semantics (merge per stage, team and approval start kept)."""

    rows: dict[uuid.UUID, ThreadState] = field(default_factory=dict)
    settled: set[uuid.UUID] = field(default_factory=set)
    escalations: set[uuid.UUID] = field(default_factory=set)

    async def apply(self, incident_id: uuid.UUID, team: str | None, patch: Patch) -> ThreadState:
        row = self.rows.get(incident_id) or ThreadState(incident_id)
        row = replace(
            row, team=row.team or team, facts=merge(row.facts, patch.facts),
            approval_requested_at=row.approval_requested_at or patch.approval_requested_at,
        )  # fmt: skip
        if patch.approval_settled:
            self.settled.add(incident_id)
        self.rows[incident_id] = row
        return row

    async def get(self, incident_id: uuid.UUID) -> ThreadState | None:
        return self.rows.get(incident_id)

    async def rendered(self, incident_id: uuid.UUID, message: str, digest: str) -> None:
        row = self.rows[incident_id]
        self.rows[incident_id] = replace(row, rendered={**row.rendered, message: digest})

    async def waiting(self, requested_before: datetime) -> list[ThreadState]:
        return [r for r in self.rows.values() if r.approval_requested_at is not None
                and r.approval_requested_at < requested_before and r.incident_id not in self.settled
                and r.incident_id not in self.escalations]  # fmt: skip

    async def escalated(self, incident_id: uuid.UUID) -> None:
        self.escalations.add(incident_id)


@dataclass
class MemoryIncidents:
    """Incident states by id; `conclude` ends a live one once (terminal states as in pagerpatch.incidents)."""

    states: dict[uuid.UUID, str] = field(default_factory=dict)
    outcomes: dict[uuid.UUID, str] = field(default_factory=dict)

    async def conclude(self, incident_id: uuid.UUID, state: str, outcome: str) -> bool:
        if incident_id not in self.states or self.states[incident_id] in TERMINAL:
            return False
        self.states[incident_id], self.outcomes[incident_id] = state, outcome
        return True

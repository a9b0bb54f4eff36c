"""What the notifier needs from the world: source control, the repository registry and two idempotent stores."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from pagerpatch.scm import PullRequestHost, PushedBranch, Scm
from pagerpatch.settings import RepoConfig
from services.notifier.domain import PullRequest
from services.notifier.domain_slack import SlackMessage
from services.notifier.outbox import OutboxEntry, Remote
from services.notifier.thread_facts import Patch, ThreadState

__all__ = [
    "Incidents",
    "Notifications",
    "Outbox",
    "PullRequestHost",
    "PullRequests",
    "PushedBranch",
    "RepoLookup",
    "Scm",
]


class RepoLookup(Protocol):
    """The repository registry (`pagerpatch.git.repos.RepoRegistry` in the service)."""

    async def require(self, name: str) -> RepoConfig:
        """The named repository; an unknown name is `Poison` (it will not become known by retrying)."""
        ...  # pragma: no cover


class PullRequests(Protocol):
    """Pull request records, one per incident: a retried approval finds the first record.

    Durable first: the intent is recorded before the branch is pushed, so there is never a branch without a
    record; a retry after a crash between the push and `record` pushes nothing new and completes the record.
    """

    async def intend(self, incident_id: uuid.UUID, pr: PullRequest) -> None:
        """Record that the incident's pull request is about to be pushed (no head commit or URL yet)."""
        ...  # pragma: no cover

    async def record(self, incident_id: uuid.UUID, pr: PullRequest) -> None:
        """Complete the incident's record with the pushed branch (a completed record is kept as it is)."""
        ...  # pragma: no cover

    async def incident_for(self, *, provider: str, branch: str, number: int | None) -> uuid.UUID | None:
        """The incident whose pull request this is (by head branch, else by number), if any."""
        ...  # pragma: no cover

    async def set_state(self, incident_id: uuid.UUID, state: str) -> None:
        """The pull request's state on the forge (merged, closed)."""
        ...  # pragma: no cover


class Notifications(Protocol):
    """Notifications, written once per (event, channel, kind); the `log` channel prints each one written."""

    async def notify(
        self, *, about: uuid.UUID, kind: str, text: str, incident_id: uuid.UUID | None, channel: str = "log"
    ) -> bool:
        """Write the notification; False when it was written before (nothing is sent twice)."""
        ...  # pragma: no cover


class Outbox(Protocol):
    """Side-effect rows, unique per (incident, kind, target). `done` keeps the first remote recorded."""

    async def get(self, incident_id: uuid.UUID, kind: str, target: str) -> OutboxEntry | None: ...  # pragma: no cover

    async def begin(self, incident_id: uuid.UUID, kind: str, target: str) -> None:
        """Create the row 'pending' (or make a failed one pending again) and count the attempt."""
        ...  # pragma: no cover

    async def done(self, incident_id: uuid.UUID, kind: str, target: str, remote: Remote) -> OutboxEntry:
        """Record the remote effect; a row already done keeps its first remote (returned)."""
        ...  # pragma: no cover

    async def fail(self, incident_id: uuid.UUID, kind: str, target: str, reason: str) -> None:
        """The effect was refused for good: 'failed' with the reason (a done row is left alone)."""
        ...  # pragma: no cover

    async def attempt_failed(self, incident_id: uuid.UUID, kind: str, target: str, error: str) -> None:
        """A retryable failure: the row stays pending with the error kept for operators."""
        ...  # pragma: no cover

    async def update_detail(self, incident_id: uuid.UUID, kind: str, target: str, detail: dict[str, Any]) -> None:
        """Merge `detail` into the row's detail (what a later update of the effect needs)."""
        ...  # pragma: no cover

    async def entries(self, incident_id: uuid.UUID) -> list[OutboxEntry]:
        """The incident's rows, oldest first."""
        ...  # pragma: no cover


# The incident thread (Slack) and the Linear issue: services/notifier/thread.py.


class ThreadStore(Protocol):
    """Each incident's thread facts (migration 0011), merged per stage."""

    async def apply(self, incident_id: uuid.UUID, team: str | None, patch: Patch) -> ThreadState:
        """Merge the patch (`thread_facts.merge`) atomically and return the stored thread (the team is kept from
        the first event that named one)."""
        ...  # pragma: no cover

    async def get(self, incident_id: uuid.UUID) -> ThreadState | None: ...  # pragma: no cover

    async def rendered(self, incident_id: uuid.UUID, message: str, digest: str) -> None:
        """Remember what a message (`root`, `approval`) now shows."""
        ...  # pragma: no cover

    async def waiting(self, requested_before: datetime) -> list[ThreadState]:
        """Threads whose approval was requested before then, not settled and not yet escalated to Linear."""
        ...  # pragma: no cover

    async def escalated(self, incident_id: uuid.UUID) -> None: ...  # pragma: no cover


class SlackApi(Protocol):
    """The Slack Web API methods the thread uses (`services/notifier/slack.py`); errors are Transient/Rejected."""

    async def post(
        self, channel: str, message: SlackMessage, *, thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Remote: ...  # pragma: no cover  # fmt: skip

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None: ...  # pragma: no cover

    async def find_root(self, channel: str, incident_id: uuid.UUID) -> Remote | None: ...  # pragma: no cover

    async def find_reply(
        self, channel: str, thread_ts: str, incident_id: uuid.UUID, kind: str
    ) -> Remote | None: ...  # pragma: no cover


class LinearApi(Protocol):
    """Linear's GraphQL API (`services/notifier/linear.py`); errors are Transient/Rejected."""

    async def find_issue(self, team_key: str, incident_id: uuid.UUID) -> Remote | None: ...  # pragma: no cover

    async def create_issue(self, team_key: str, title: str, description: str) -> Remote: ...  # pragma: no cover


class Incidents(Protocol):
    """Ending an incident from outside the pipeline (`pagerpatch.incidents.IncidentRepository` in the service)."""

    async def conclude(self, incident_id: uuid.UUID, state: str, outcome: str) -> bool:
        """Move a live incident to terminal `state` with `outcome`; False when it had already ended."""
        ...  # pragma: no cover

"""What the notifier needs from the world: source control, the repository registry and two idempotent stores."""

from __future__ import annotations

import uuid
from typing import Protocol

from pagerpatch.scm import PushedBranch, Scm
from pagerpatch.settings import RepoConfig
from services.notifier.domain import PullRequest

__all__ = ["Notifications", "PullRequests", "PushedBranch", "RepoLookup", "Scm"]


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

    async def record(self, incident_id: uuid.UUID, pr: PullRequest) -> int:
        """Complete the incident's record with the pushed branch (a completed record is kept as it is); returns the
        record's id."""
        ...  # pragma: no cover


class Notifications(Protocol):
    """Notifications, written once per (event, channel, kind); the `log` channel prints each one written."""

    async def notify(
        self, *, about: uuid.UUID, kind: str, text: str, incident_id: uuid.UUID | None, channel: str = "log"
    ) -> bool:
        """Write the notification; False when it was written before (nothing is sent twice)."""
        ...  # pragma: no cover

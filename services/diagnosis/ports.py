"""What diagnosis needs from the world: a repository's history at a checked-out commit, worktrees to check it out
in, the repository registry, an audit trail, and a guard for git work.

History and Checkouts are blocking (git runs as a subprocess); the use case runs them in a worker thread.
When git itself fails they raise `GitError`, which the guard counts against the repository's breaker.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from pagerpatch.git.workspace import GitError
from pagerpatch.settings import RepoConfig
from schemas.events import DiagnosisReadyPayload, IncidentOpenedPayload
from services.diagnosis.domain.facts import Blame, Commit
from services.diagnosis.domain.investigation import Entry, Outcome

__all__ = ["Audit", "Checkouts", "GitError", "GitGuard", "History", "Investigator", "Knowledge", "RepoLookup"]

T = TypeVar("T")


class History(Protocol):
    """A repository's history as seen from one checked-out worktree; `rev` is any revision git understands."""

    def resolve(self, rev: str) -> str:
        """The full sha `rev` names."""
        ...  # pragma: no cover

    def files(self, rev: str) -> set[str]:
        """Repository-relative paths of the files in `rev`'s tree."""
        ...  # pragma: no cover

    def read(self, file: str, rev: str) -> str | None:
        """The text of `file` at `rev`; None when it is not there."""
        ...  # pragma: no cover

    def blame(self, file: str, line: int, rev: str, ignoring: frozenset[str] = frozenset()) -> Blame | None:
        """The commit that last changed `file:line` as of `rev`, whitespace-only changes and commits in `ignoring`
        (full shas) looked through, moved or copied code followed; None when that line is not there."""
        ...  # pragma: no cover

    def region_history(self, file: str, start: int, end: int, rev: str, limit: int) -> list[Commit]:
        """Up to `limit` commits that touched lines `start`..`end` of `file` (as numbered at `rev`), newest first;
        empty when unknown."""
        ...  # pragma: no cover

    def changed_files(self, sha: str) -> set[str]:
        """Repository-relative paths commit `sha` changed (against its first parent)."""
        ...  # pragma: no cover

    def has_commit(self, sha: str) -> bool:
        """Whether `sha` names a commit present in the repository (a blame can name one a shallow clone lacks)."""
        ...  # pragma: no cover

    def commit(self, sha: str) -> Commit:
        """Author, dates, parents and subject of one commit."""
        ...  # pragma: no cover

    def commits_between(self, older: str, newer: str) -> int:
        """How many commits `newer` has that `older` has not (0 when `older` is `newer` or descends from it)."""
        ...  # pragma: no cover

    def descends(self, sha: str, ancestor: str) -> bool:
        """Whether commit `sha` strictly descends from commit `ancestor`; False when git cannot tell."""
        ...  # pragma: no cover

    def recent_commits(self, files: Sequence[str], rev: str, limit: int) -> list[str]:
        """Up to `limit` commits up to `rev` touching `files`, newest first, one line each:
        `<short sha> <date> <author>: <subject> [changed files]`."""
        ...  # pragma: no cover

    def mentioning(self, word: str, rev: str) -> list[str]:
        """Files of `rev` whose text contains `word` as a whole word."""
        ...  # pragma: no cover

    def workspace(self) -> Path | None:
        """The worktree's folder, for the investigation's tools (None: no folder, e.g. in memory)."""
        ...  # pragma: no cover


class Checkouts(Protocol):
    """Per-incident worktrees of the repositories diagnosis reads."""

    def refresh(self, repo: RepoConfig) -> None:
        """Bring the cached copy of `repo` up to date (cloning it on first use)."""
        ...  # pragma: no cover

    def worktree(self, repo: RepoConfig, incident_id: str, ref: str) -> AbstractContextManager[History]:
        """A fresh worktree of `ref` for the incident, removed on exit; raises `GitError` when `ref` cannot be
        checked out (`missing_ref` when the repository has no such branch or commit)."""
        ...  # pragma: no cover

    def head(self, repo: RepoConfig) -> tuple[str | None, str] | None:
        """The branch the repository's own HEAD names (None when detached) and its commit; None when unknown.
        What `default_branch` should probably be when the configured one does not exist."""
        ...  # pragma: no cover


class RepoLookup(Protocol):
    """The repository registry (`pagerpatch.git.repos.RepoRegistry` in the service)."""

    async def require(self, name: str) -> RepoConfig:
        """The named repository; an unknown name is `Poison` (it will not become known by retrying)."""
        ...  # pragma: no cover


class Audit(Protocol):
    """The audit trail: why an incident got no diagnosis is recorded where an operator will look."""

    async def skipped(self, incident_id: uuid.UUID, reason: str) -> None:
        """Record that diagnosis skipped the incident, and why."""
        ...  # pragma: no cover


class GitGuard(Protocol):
    """Runs one repository's git work (in the service: through the `git:<repo>` circuit breaker)."""

    async def __call__(self, repo: str, work: Callable[[], Awaitable[T]]) -> T:
        """The result of `work()`; git failures may surface as `Transient` when the guard is a breaker."""
        ...  # pragma: no cover


class Knowledge(Protocol):
    """The knowledge base the investigation reads (`pagerpatch.knowledge.KnowledgeBase` in the service)."""

    async def catalog(self) -> Sequence[Entry]:
        """Every entry (frontmatter and body), guidelines first, then knowledge, then runbooks."""
        ...  # pragma: no cover

    async def runbooks_for(self, title: str, labels: dict[str, str]) -> Sequence[Entry]:
        """The runbooks whose `alerts:` patterns match this alert."""
        ...  # pragma: no cover

    async def get(self, keyword: str) -> Entry | None:
        """One entry by keyword."""
        ...  # pragma: no cover


class Investigator(Protocol):
    """The investigation agent (services/diagnosis/investigation.py) over the agent runtime."""

    @property
    def enabled(self) -> bool:
        """Whether a model is configured; without one the deterministic diagnosis stands."""
        ...  # pragma: no cover

    async def investigate(
        self,
        incident_id: str,
        incident: IncidentOpenedPayload,
        deterministic: DiagnosisReadyPayload,
        history: History,
        team: str | None,
        at: datetime | None = None,
    ) -> Outcome:
        """Prepare, investigate, report and ground; never raises for a model failure (the outcome says why).
        `at` is the incident's time: "now" for the observability tools' default range."""
        ...  # pragma: no cover

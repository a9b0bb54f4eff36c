"""Diagnosis's real I/O: git history of a per-incident worktree, the worktrees themselves, the Postgres audit log,
and the circuit breaker git work runs through."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg

from pagerpatch.git import workspace
from pagerpatch.git.workspace import BlameInfo, GitError
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.kernel import store
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.knowledge import KnowledgeBase, KnowledgeEntry, sync_knowledge
from pagerpatch.settings import RepoConfig, Settings
from services.diagnosis.domain.facts import Blame, Commit

STAGE = "diagnosis"
log = logging.getLogger(__name__)
T = TypeVar("T")


def blame_of(info: BlameInfo) -> Blame:
    return Blame(
        sha=info.sha,
        author=info.author,
        summary=info.summary,
        committed_at=info.committed_at,
        original_file=info.original_file,
    )


@dataclass(frozen=True)
class GitHistory:
    """The History port on a git worktree (or any repository) at `path`: one git command per question."""

    path: Path

    def resolve(self, rev: str) -> str:
        return workspace.resolve(self.path, rev)

    def files(self, rev: str) -> set[str]:
        return workspace.list_files(self.path, rev)

    def read(self, file: str, rev: str) -> str | None:
        try:
            return workspace.read_file(self.path, file, rev)
        except GitError:
            return None

    def blame(self, file: str, line: int, rev: str, ignoring: frozenset[str] = frozenset()) -> Blame | None:
        try:
            return blame_of(workspace.blame_line(self.path, file, line, rev, ignore_revs=ignoring))
        except GitError:
            return None

    def region_history(self, file: str, start: int, end: int, rev: str, limit: int) -> list[Commit]:
        try:
            history = workspace.log_range_history(self.path, file, start, end, rev, max_count=limit)
        except GitError:
            return []
        return history  # git's commit records are the domain's Commit

    def changed_files(self, sha: str) -> set[str]:
        return workspace.changed_files(self.path, sha)

    def has_commit(self, sha: str) -> bool:
        return workspace.commit_exists(self.path, sha)

    def commit(self, sha: str) -> Commit:
        return workspace.commit_info(self.path, sha)

    def commits_between(self, older: str, newer: str) -> int:
        return workspace.commits_since(self.path, older, newer)

    def descends(self, sha: str, ancestor: str) -> bool:
        if sha == ancestor:
            return False
        try:  # every commit of `ancestor` is in `sha`
            return workspace.commits_since(self.path, sha, ancestor) == 0
        except GitError:
            return False

    def recent_commits(self, files: Sequence[str], rev: str, limit: int) -> list[str]:
        sep = "\x1e"
        args = ["log", f"--max-count={limit}", f"--format={sep}%h %ad %an: %s", "--date=short", "--name-only"]
        try:
            out = workspace.git(self.path, *args, "--end-of-options", rev, "--", *files)
        except GitError:
            return []
        lines = []
        for record in out.split(sep)[1:]:
            head, *changed = [ln for ln in record.splitlines() if ln.strip()]
            lines.append(f"{head} [{', '.join(changed[:8])}]")
        return lines

    def mentioning(self, word: str, rev: str) -> list[str]:
        try:
            out = workspace.git(self.path, "grep", "-l", "-w", "-F", "-I", "-e", word, rev)
        except GitError:  # no match (exit 1) or no such revision
            return []
        return [line.removeprefix(f"{rev}:") for line in out.splitlines()]

    def workspace(self) -> Path | None:
        return self.path


@dataclass(frozen=True)
class GitCheckouts:
    """The Checkouts port on cached clones and per-incident worktrees (`pagerpatch.git.worktrees`)."""

    workspaces: Workspaces
    purpose: str = STAGE  # the worktree's folder under the incident's: other stages use their own

    def refresh(self, repo: RepoConfig) -> None:
        self.workspaces.cached_clone(repo)

    def head(self, repo: RepoConfig) -> tuple[str | None, str] | None:
        clone = self.workspaces.clone_path(repo)
        try:
            return workspace.head_branch(clone), workspace.resolve(clone, "HEAD")
        except GitError:
            return None

    @contextmanager
    def worktree(self, repo: RepoConfig, incident_id: str, ref: str) -> Iterator[GitHistory]:
        path = self.workspaces.worktree(repo, incident_id, ref, self.purpose)
        try:
            yield GitHistory(path)
        finally:
            self.workspaces.remove_worktree(path)


@dataclass(frozen=True)
class PgAudit:
    """The Audit port on the Postgres audit log."""

    pool: asyncpg.Pool

    async def skipped(self, incident_id: uuid.UUID, reason: str) -> None:
        await store.audit(self.pool, actor=STAGE, action="diagnosis.skipped", incident_id=incident_id,
                          details={"reason": reason})  # fmt: skip


_git_limit: int | None = None
_git_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def limit_git_work(max_concurrent: int | None) -> None:
    """Bound this process's concurrent git work (`diagnosis.max_concurrent`; unset: CPU count)."""
    global _git_limit
    _git_limit = max_concurrent
    _git_slots.clear()


def git_slots() -> asyncio.Semaphore:
    """The process's git-work slots (one semaphore per event loop: tests run several loops in one process)."""
    loop = asyncio.get_running_loop()
    slots = _git_slots.get(loop)
    if slots is None:
        slots = _git_slots[loop] = asyncio.Semaphore(_git_limit or os.cpu_count() or 1)
    return slots


@dataclass(frozen=True)
class GitBreaker:
    """The GitGuard port on the service's breakers: git failures count against `git:<repo>` and surface as
    Transient; Poison passes through without opening the breaker. At most `diagnosis.max_concurrent` pieces of
    git work run at once; the other handoffs wait for a slot (their heartbeat keeps them delivered)."""

    breakers: Breakers

    async def __call__(self, repo: str, work: Callable[[], Awaitable[T]]) -> T:
        async with git_slots():
            return await self.breakers.call(f"git:{repo}", work, failures=(GitError, OSError))


class SyncedKnowledge:
    """The Knowledge port on the Postgres knowledge base. With `knowledge.sync_on_start` (the default) the folder
    is indexed when the service starts (`start`, only what changed is written), or on first use when that failed;
    without it the index is read as `pagerpatch knowledge sync` left it. A knowledge base that cannot be read is
    an empty one: the investigation goes on without it, and the log says why."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.base = KnowledgeBase(pool)
        self.pool = pool
        self.settings = settings
        self._synced = not settings.knowledge.sync_on_start

    async def start(self) -> None:
        """Index the knowledge folder now (at start-up) when `knowledge.sync_on_start`."""
        await self._ready()

    async def _ready(self) -> bool:
        if not self._synced:
            try:
                await sync_knowledge(self.pool, self.settings)
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("knowledge base not synced: %s", exc)
                return False
            self._synced = True
        return True

    async def catalog(self) -> Sequence[KnowledgeEntry]:
        return await self.base.catalog() if await self._ready() else []

    async def runbooks_for(self, title: str, labels: dict[str, str]) -> Sequence[KnowledgeEntry]:
        return await self.base.runbooks_for(title, labels) if await self._ready() else []

    async def get(self, keyword: str) -> KnowledgeEntry | None:
        return await self.base.get(keyword) if await self._ready() else None

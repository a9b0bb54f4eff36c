"""In-memory diagnosis ports: a repository's history as plain dicts, worktrees of named refs, a registry and an
audit list. Unit tests (and evals) run the real use case on them with no git and no Postgres."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pagerpatch.git.repos import MemoryRepos as MemoryRepos  # the registry port, shared by every stage
from pagerpatch.git.workspace import GitError
from pagerpatch.settings import RepoConfig
from services.diagnosis.domain.facts import Blame, Commit

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class MemoryHistory:
    """One revision of a repository and the commits behind it; `rev` arguments other than HEAD must be known."""

    head: str
    commits: dict[str, Commit] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # file -> text at `head`
    # (file, line) -> the sha that last changed it, or the shas that changed it, newest first (what blame names
    # when the newer ones are ignored)
    blames: dict[tuple[str, int], str | list[str]] = field(default_factory=dict)
    changes: list[tuple[str, int, int, str]] = field(default_factory=list)  # (file, first, last line, sha) touched
    versions: dict[tuple[str, str], str] = field(default_factory=dict)  # (file, sha) -> text at a commit not `head`
    touched: dict[str, set[str]] = field(default_factory=dict)  # sha -> the files that commit changed

    def resolve(self, rev: str) -> str:
        sha = self.head if rev == "HEAD" else rev
        if sha not in self.commits:
            raise GitError(("rev-parse", rev), 128, f"unknown revision {rev!r}")
        return sha

    def files(self, rev: str) -> set[str]:
        self.resolve(rev)
        return set(self.sources)

    def read(self, file: str, rev: str) -> str | None:
        if rev in ("HEAD", self.head):
            return self.sources.get(file)
        return self.versions.get((file, rev))

    def blame(self, file: str, line: int, rev: str, ignoring: frozenset[str] = frozenset()) -> Blame | None:
        known = self.blames.get((file, line))
        if not known:
            return None
        shas = [known] if isinstance(known, str) else known
        # as git does, a line no older commit explains stays with the (ignored) commit that wrote it
        sha = next((s for s in shas if s not in ignoring), shas[-1])
        c = self.commits.get(sha)
        if c is None:  # blame can name a commit the repository lacks (a shallow clone's boundary)
            return Blame(sha, "", "", _EPOCH)
        return Blame(sha, c.author, c.subject, c.committed_at)

    def region_history(self, file: str, start: int, end: int, rev: str, limit: int) -> list[Commit]:
        touched = {self.commits[sha] for f, first, last, sha in self.changes
                   if f == file and first <= end and start <= last and sha in self.commits}  # fmt: skip
        return sorted(touched, key=lambda c: c.committed_at, reverse=True)[:limit]

    def changed_files(self, sha: str) -> set[str]:
        return set(self.touched.get(sha, set()))

    def has_commit(self, sha: str) -> bool:
        return sha in self.commits

    def commit(self, sha: str) -> Commit:
        if sha not in self.commits:
            raise GitError(("show", sha), 128, f"bad object {sha}")
        return self.commits[sha]

    def commits_between(self, older: str, newer: str) -> int:
        return len(self._ancestry(newer) - self._ancestry(older))

    def descends(self, sha: str, ancestor: str) -> bool:
        return sha != ancestor and ancestor in self._ancestry(sha)

    def recent_commits(self, files: Sequence[str], rev: str, limit: int) -> list[str]:
        shas = [sha for sha, changed in self.touched.items() if sha in self.commits and changed & set(files)]
        newest = sorted((self.commits[s] for s in shas), key=lambda c: c.committed_at, reverse=True)[:limit]
        return [f"{c.sha[:7]} {c.authored_at:%Y-%m-%d} {c.author}: {c.subject}" for c in newest]

    def mentioning(self, word: str, rev: str) -> list[str]:
        return sorted(f for f, text in self.sources.items() if re.search(rf"\b{re.escape(word)}\b", text))

    def workspace(self) -> Path | None:
        return None

    def _ancestry(self, sha: str) -> set[str]:
        """`sha` and every commit it descends from."""
        seen: set[str] = set()
        todo = [sha]
        while todo:
            current = todo.pop()
            if current not in seen and current in self.commits:
                seen.add(current)
                todo.extend(self.commits[current].parents)
        return seen


@dataclass
class MemoryCheckouts:
    """Worktrees of the refs in `refs` (a ref it lacks fails as git would, a ref in `failures` with that error);
    records what was opened and closed."""

    refs: dict[str, MemoryHistory] = field(default_factory=dict)
    failures: dict[str, GitError] = field(default_factory=dict)  # ref -> how checking it out fails (a lock race...)
    repo_head: tuple[str | None, str] | None = None  # the repository's own HEAD branch and commit
    refreshed: list[str] = field(default_factory=list)
    opened: list[tuple[str, str, str]] = field(default_factory=list)  # (repo, incident, ref)
    closed: list[str] = field(default_factory=list)  # refs whose worktree was removed

    def refresh(self, repo: RepoConfig) -> None:
        self.refreshed.append(repo.name)

    def head(self, repo: RepoConfig) -> tuple[str | None, str] | None:
        return self.repo_head

    @contextmanager
    def worktree(self, repo: RepoConfig, incident_id: str, ref: str) -> Iterator[MemoryHistory]:
        if ref in self.failures:
            raise self.failures[ref]
        if ref not in self.refs:
            raise GitError(("worktree", "add", ref), 128, f"invalid reference: {ref}")
        self.opened.append((repo.name, incident_id, ref))
        try:
            yield self.refs[ref]
        finally:
            self.closed.append(ref)


@dataclass
class MemoryAudit:
    """The audit trail as a list of (incident, reason) skips."""

    skips: list[tuple[uuid.UUID, str]] = field(default_factory=list)

    async def skipped(self, incident_id: uuid.UUID, reason: str) -> None:
        self.skips.append((incident_id, reason))

"""What a stage needs from source control: push a fix as a branch, idempotently (local git today, GitHub next)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pagerpatch.settings import RepoConfig


@dataclass(frozen=True)
class PushedBranch:
    """Where a fix landed; `already_there` is True when a retry found the branch at the very same commit."""

    remote: str
    branch: str
    head_commit: str
    url: str
    already_there: bool


class Scm(Protocol):
    """A source-control provider. Pushes are blocking (git, HTTP) and run in a worker thread by the caller.

    `push_fix` must be idempotent: the same arguments give the same commit, and a branch already at that commit
    is left alone, so a redelivered approval never opens a second pull request.
    """

    @property
    def provider(self) -> str:
        """The provider's name as recorded with the pull request (`local-git`, `github`)."""
        ...  # pragma: no cover

    def push_fix(
        self,
        repo: RepoConfig,
        *,
        branch: str,
        base_commit: str,
        patch: str,
        message: str,
        when: datetime,
    ) -> PushedBranch: ...  # pragma: no cover

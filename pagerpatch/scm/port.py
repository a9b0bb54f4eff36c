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


class ScmRejected(Exception):
    """The forge refused for good (bad token, no access, unknown repository or base): not worth a retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ScmUnavailable(Exception):
    """The forge failed (5xx, connection, timeout): counted by the breaker, the message waits and retries."""


@dataclass(frozen=True)
class PullRequestSpec:
    """A pull request to open on a forge repository (`owner/name`) from `branch` into `base`."""

    repo: str
    branch: str
    base: str
    title: str
    body: str
    draft: bool = False
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()  # user logins
    team_reviewers: tuple[str, ...] = ()  # team slugs of the repository's organisation


@dataclass(frozen=True)
class HostedPullRequest:
    """A pull request as the forge has it."""

    number: int
    url: str
    head_commit: str
    state: str  # open / closed
    merged: bool = False


class PullRequestHost(Protocol):
    """A forge that hosts pull requests (GitHub). Blocking: the caller runs it in a worker thread.

    Errors: `ScmRejected` (terminal), `ScmUnavailable` (retry behind the breaker), `Transient` (rate limited:
    wait `retry_after_s`). Every call is idempotent.
    """

    @property
    def provider(self) -> str: ...  # pragma: no cover

    def push_fix(
        self, repo: RepoConfig, *, branch: str, base_commit: str, patch: str, message: str, when: datetime
    ) -> PushedBranch:
        """As `Scm.push_fix`, to the forge repository named in `repo.github`."""
        ...  # pragma: no cover

    def find_pull_request(self, repo: str, branch: str) -> HostedPullRequest | None:
        """The pull request (open or closed) whose head is `branch`, if any."""
        ...  # pragma: no cover

    def open_pull_request(self, spec: PullRequestSpec) -> HostedPullRequest:
        """Open it (an existing one for the branch is returned), then add its labels and ask its reviewers."""
        ...  # pragma: no cover

    def codeowners(self, repo: str, ref: str) -> str | None:
        """The repository's CODEOWNERS text at `ref` (.github/, root or docs/), if it has one."""
        ...  # pragma: no cover

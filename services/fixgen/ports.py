"""What fixgen needs from the world: the repository registry, worktrees (at the base, or with a commit reverted,
or with a patch applied), a test runner in the repository's environment, the fix agent, and breakers to call them
through. The failure kinds each port raises are part of its contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from pagerpatch.git.workspace import GitError, RevertResult
from pagerpatch.sandbox import RepoEnvironment, SandboxError, SandboxResult, SetupFailed, TestReport
from pagerpatch.settings import RepoConfig
from services.fixgen.domain.patches import FixProposal

__all__ = [
    "GIT_FAILURES",
    "SANDBOX_FAILURES",
    "AgentUnavailable",
    "CircuitBreakers",
    "FixAgent",
    "FixRequest",
    "Patcher",
    "RepoEnvironment",
    "RepoLookup",
    "RevertResult",
    "Reverter",
    "SandboxResult",
    "SetupFailed",
    "TestReport",
    "TestRunner",
]

T = TypeVar("T")

# What counts against a breaker: a dependency failing, not a verdict (a conflict, failing tests) about the commit.
GIT_FAILURES: tuple[type[BaseException], ...] = (GitError, OSError)
SANDBOX_FAILURES: tuple[type[BaseException], ...] = (SandboxError, OSError)


class RepoLookup(Protocol):
    """The repository registry (`pagerpatch.git.repos.RepoRegistry` in the service)."""

    async def require(self, name: str) -> RepoConfig:
        """The named repository; an unknown name is `Poison` (it will not become known by retrying)."""
        ...  # pragma: no cover


class Reverter(Protocol):
    """Per-incident worktrees of a repository, at the base commit or with a commit reverted. Raises GIT_FAILURES."""

    async def refresh(self, repo: RepoConfig) -> None:
        """Bring the cached clone of `repo` up to date (made on first use)."""
        ...  # pragma: no cover

    async def checkout(self, repo: RepoConfig, incident_id: str, base_commit: str) -> Path:
        """A fresh worktree at `base_commit` (for the baseline run); races are raised as `prepare`'s are."""
        ...  # pragma: no cover

    async def prepare(
        self, repo: RepoConfig, incident_id: str, base_commit: str, suspect_sha: str
    ) -> tuple[Path, RevertResult]:
        """A fresh worktree at `base_commit` with `suspect_sha` reverted there (a conflict is a failed result).

        A lock race or a vanished working tree is raised (`GitError` with `contention`, `FileNotFoundError`).
        """
        ...  # pragma: no cover

    async def diff(self, worktree: Path, base_commit: str) -> str:
        """The unified diff from `base_commit` to the worktree's HEAD."""
        ...  # pragma: no cover

    async def read_files(self, worktree: Path, rev: str, paths: Sequence[str]) -> dict[str, str | None]:
        """Each file's text at `rev` (None when it does not exist there)."""
        ...  # pragma: no cover

    async def commit_file(self, worktree: Path, path: str, text: str, message: str) -> None:
        """Write `path` in the worktree and commit it on top of the revert (the regression test)."""
        ...  # pragma: no cover

    async def remove(self, worktree: Path) -> None:
        """Remove a worktree made by `prepare` or `checkout`; an absent one is fine."""
        ...  # pragma: no cover


class Patcher(Reverter, Protocol):
    """Worktrees a patch is applied in (the model-patch strategy). Raises GIT_FAILURES."""

    async def workspace(self, repo: RepoConfig, incident_id: str, base_commit: str, purpose: str) -> Path:
        """A fresh worktree at `base_commit` under the incident's folder, named by `purpose` (replaced if present)."""
        ...  # pragma: no cover

    async def check_patch(self, worktree: Path, patch: str) -> str | None:
        """`git apply --check`: None when the patch applies to the worktree, else git's reason."""
        ...  # pragma: no cover

    async def apply_patch(self, worktree: Path, patch: str) -> None:
        """`git apply` a patch that `check_patch` accepted."""
        ...  # pragma: no cover

    async def write_file(self, worktree: Path, path: str, text: str) -> None:
        """Write one file (the regression test) in the worktree, uncommitted; `ValueError` when the path leads out
        of the worktree (through a symlink) or cannot be a file there (a folder by that name)."""
        ...  # pragma: no cover

    async def commit_paths(self, worktree: Path, paths: Sequence[str], message: str) -> None:
        """Commit the changes to `paths` only (the fix's files and its regression test; even where .gitignore
        names them): whatever the test runs left in the worktree stays out of the patch."""
        ...  # pragma: no cover


class AgentUnavailable(Exception):
    """The fix agent could not answer: the model is down, over budget, refused, or answered nothing valid.

    Fixgen then keeps the revert's result if it has one, else fails the fix with this reason (never a dead letter).
    """


@dataclass(frozen=True)
class FixRequest:
    """One attempt's question to the fix agent: the prompt, and the worktree its read-only tools look at."""

    prompt: str
    workspace: Path
    rev: str
    incident_id: str
    team: str | None = None  # the incident's team (its daily budget, the ledger's team column)


class FixAgent(Protocol):
    """The model that writes a patch (`LlmFixAgent` over the agent runtime in the service)."""

    async def propose(self, request: FixRequest) -> FixProposal:
        """The agent's patch; raises `AgentUnavailable` when there is none to be had."""
        ...  # pragma: no cover


class TestRunner(Protocol):
    """Runs code in a repository's own environment. Raises SANDBOX_FAILURES when the runner itself fails."""

    async def environment(self, repo: RepoConfig, tree: Path) -> RepoEnvironment:
        """The environment for the commit checked out in `tree`, set up on first use.

        A failing set-up command is `SetupFailed` (a verdict about the repository, not a runner failure).
        """
        ...  # pragma: no cover

    async def run_tests(self, env: RepoEnvironment, command: str, tree: Path, *, timeout_s: float) -> TestReport:
        """What `command` did in `tree` within `timeout_s`, per test when it could tell (failing tests are a result)."""
        ...  # pragma: no cover

    async def run_python(self, env: RepoEnvironment, script: str, tree: Path, *, timeout_s: float) -> SandboxResult:
        """What `python <script>` did, run from `tree` (the script is kept out of the tree)."""
        ...  # pragma: no cover


class CircuitBreakers(Protocol):
    """Calls through one breaker per dependency (`pagerpatch.kernel.breakers.Breakers` in the service)."""

    async def call(
        self, dependency: str, fn: Callable[[], Awaitable[T]], *, failures: tuple[type[BaseException], ...] = ...
    ) -> T:
        """`fn()`; an exception of the `failures` kinds counts against the breaker and surfaces as `Transient`."""
        ...  # pragma: no cover

"""The real I/O behind fixgen's ports: git worktrees from the cached clones (reverts and patches), the repository's
environment in the configured sandbox, and the fix agent over the agent runtime."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from pagerpatch.git import workspace
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.llm import BudgetExceeded, LlmError, LlmRuntime, LlmUnavailable
from pagerpatch.llm.config import llm_enabled
from pagerpatch.sandbox import (
    Environments,
    RepoEnvironment,
    Sandbox,
    SandboxResult,
    SandboxUnavailable,
    TestReport,
    make_sandbox,
    run_python,
    run_test_command,
)
from pagerpatch.settings import RepoConfig, SandboxSettings, Settings
from services.fixgen.domain.patches import FixProposal
from services.fixgen.ports import AgentUnavailable, FixRequest

log = logging.getLogger(__name__)

WORKTREE_PURPOSE = "fix-revert"  # the worktree's folder under the incident's; a retry replaces it
BASE_PURPOSE = "fix-base"  # the base commit as it is: the baseline run and the reproduction there


class WorktreeReverter:
    """Reverts in per-incident worktrees of the cached clones; git's blocking calls run in a worker thread."""

    def __init__(self, workspaces: Workspaces, identity: workspace.GitIdentity | None = None) -> None:
        self.workspaces = workspaces
        self.identity = identity or workspace.GitIdentity()

    async def refresh(self, repo: RepoConfig) -> None:
        await asyncio.to_thread(self.workspaces.cached_clone, repo)

    async def checkout(self, repo: RepoConfig, incident_id: str, base_commit: str) -> Path:
        return await asyncio.to_thread(self.workspaces.worktree, repo, incident_id, base_commit, BASE_PURPOSE)

    async def prepare(
        self, repo: RepoConfig, incident_id: str, base_commit: str, suspect_sha: str
    ) -> tuple[Path, workspace.RevertResult]:
        return await asyncio.to_thread(self._prepare, repo, incident_id, base_commit, suspect_sha)

    def _prepare(
        self, repo: RepoConfig, incident_id: str, base_commit: str, suspect_sha: str
    ) -> tuple[Path, workspace.RevertResult]:
        path = self.workspaces.worktree(repo, incident_id, base_commit, WORKTREE_PURPOSE)
        return path, workspace.revert(path, suspect_sha, self.identity)

    async def diff(self, worktree: Path, base_commit: str) -> str:
        return await asyncio.to_thread(workspace.diff, worktree, base_commit, "HEAD")

    async def read_files(self, worktree: Path, rev: str, paths: Sequence[str]) -> dict[str, str | None]:
        return await asyncio.to_thread(self._read_files, worktree, rev, paths)

    def _read_files(self, worktree: Path, rev: str, paths: Sequence[str]) -> dict[str, str | None]:
        present = workspace.list_files(worktree, rev)
        return {path: workspace.read_file(worktree, path, rev) if path in present else None for path in paths}

    async def commit_file(self, worktree: Path, path: str, text: str, message: str) -> None:
        await asyncio.to_thread(self._commit_file, worktree, path, text, message)

    def _commit_file(self, worktree: Path, path: str, text: str, message: str) -> None:
        target = worktree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        workspace.git(worktree, "add", "--", path)
        workspace.git(worktree, *self.identity.config_args(), "commit", "--quiet", "--no-verify", "-m", message)

    async def remove(self, worktree: Path) -> None:
        await asyncio.to_thread(self.workspaces.remove_worktree, worktree)

    # ------------------------------------------------------------------ patches (the model-patch strategy)
    async def workspace(self, repo: RepoConfig, incident_id: str, base_commit: str, purpose: str) -> Path:
        return await asyncio.to_thread(self.workspaces.worktree, repo, incident_id, base_commit, purpose)

    async def check_patch(self, worktree: Path, patch: str) -> str | None:
        return await asyncio.to_thread(self._apply, worktree, patch, True)

    async def apply_patch(self, worktree: Path, patch: str) -> None:
        problem = await asyncio.to_thread(self._apply, worktree, patch, False)
        if problem is not None:
            raise workspace.GitError(("apply",), 1, problem)

    def _apply(self, worktree: Path, patch: str, check: bool) -> str | None:
        """`git apply [--check]` of `patch` (kept in a file outside the worktree); git's complaint, or None."""
        with tempfile.NamedTemporaryFile("w", prefix="pagerpatch-patch-", suffix=".diff") as file:
            file.write(patch)
            file.flush()
            try:
                workspace.git(worktree, "apply", *(["--check"] if check else []), "--whitespace=nowarn", file.name)
            except workspace.GitError as exc:
                if exc.returncode is None:  # git itself failed (timeout, missing): not a verdict on the patch
                    raise
                return exc.stderr.strip() or f"git apply exited {exc.returncode}"
        return None

    async def write_file(self, worktree: Path, path: str, text: str) -> None:
        def write() -> None:
            root = worktree.resolve()
            target = (root / path).resolve()
            if not target.is_relative_to(root) or ".git" in target.relative_to(root).parts[:1]:
                raise ValueError(f"{path!r} leads outside the worktree")  # a symlink in the tree; never followed
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            except OSError as exc:  # a folder by that name, a file where a folder should be: the model's mistake
                raise ValueError(f"the regression test cannot be written at {path!r}: {exc.strerror}") from exc

        await asyncio.to_thread(write)

    async def commit_paths(self, worktree: Path, paths: Sequence[str], message: str) -> None:
        def commit() -> None:
            # Only these paths (forced: a path .gitignore names is still the fix's), never `add --all`: the test
            # runs write into the tree (logs, reports, the set-up's generated files) and none of that is the fix.
            workspace.git(worktree, "add", "--all", "--force", "--", *paths)
            workspace.git(worktree, *self.identity.config_args(), "commit", "--quiet", "--no-verify", "-m", message)

        await asyncio.to_thread(commit)


class SandboxTestRunner:
    """The repository's environment and test command in the configured sandbox (bubblewrap, or unsandboxed)."""

    def __init__(self, sandbox: Sandbox, environments: Environments, *, max_concurrent: int | None = None) -> None:
        self.sandbox = sandbox
        self.environments = environments
        # At most this many sandboxes at once per process: more would only thrash the CPUs (every run gets
        # slower, none finishes sooner); the other handoffs wait here, their heartbeat keeping them delivered.
        self.max_concurrent = max_concurrent or os.cpu_count() or 1
        self.slots = asyncio.Semaphore(self.max_concurrent)

    async def environment(self, repo: RepoConfig, tree: Path) -> RepoEnvironment:
        async with self.slots:
            return await self.environments.ensure(repo, tree)

    async def run_tests(self, env: RepoEnvironment, command: str, tree: Path, *, timeout_s: float) -> TestReport:
        async with self.slots:
            return await run_test_command(self.sandbox, env, command, tree, timeout_s=timeout_s)

    async def run_python(self, env: RepoEnvironment, script: str, tree: Path, *, timeout_s: float) -> SandboxResult:
        async with self.slots:
            return await run_python(self.sandbox, env, script, tree, timeout_s=timeout_s)


def make_test_runner(settings: SandboxSettings, envs_root: Path) -> tuple[SandboxTestRunner | None, str | None]:
    """The runner the settings ask for, or None and why not (fixgen then reports each fix as failed, with the fix)."""
    try:
        sandbox = make_sandbox(settings)
    except SandboxUnavailable as exc:
        return None, str(exc)
    runner = SandboxTestRunner(sandbox, Environments(envs_root, sandbox), max_concurrent=settings.max_concurrent)
    return runner, None


class LlmFixAgent:
    """The fix agent through the agent runtime: the `fixgen` agent of agents.yaml, its read-only tools looking at
    the attempt's worktree, its answer a validated `FixProposal`. Any model failure is `AgentUnavailable`."""

    STEP = "patch"

    def __init__(self, runtime: LlmRuntime) -> None:
        self.runtime = runtime

    async def propose(self, request: FixRequest) -> FixProposal:
        try:
            result = await self.runtime.run_tools(
                agent="fixgen", step=self.STEP, prompt=request.prompt, output=FixProposal,
                incident_id=request.incident_id, team=request.team,
                tool_context={"workspace": str(request.workspace), "rev": request.rev},
            )  # fmt: skip
        except BudgetExceeded as exc:
            raise AgentUnavailable(f"over budget: {exc}") from exc
        except LlmUnavailable as exc:
            raise AgentUnavailable(f"the model is unavailable: {exc}") from exc
        except LlmError as exc:
            raise AgentUnavailable(f"the model call failed: {exc}") from exc
        if result.output is None:
            raise AgentUnavailable("the fix agent gave no answer")
        log.info("fix agent: %d turn(s), %d tool call(s), $%.4f", result.turns, len(result.tool_calls),
                 result.spent.cost_usd)  # fmt: skip
        return result.output


def make_fix_agent(settings: Settings, pool: asyncpg.Pool | None) -> LlmFixAgent | None:
    """The fix agent when a model is configured (invalid tools/agents/policies files fail start-up), else None."""
    if not llm_enabled(settings):
        return None
    return LlmFixAgent(LlmRuntime.create(settings, pool))

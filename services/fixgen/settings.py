"""Fixgen's view of the settings tree: workspaces and the sandbox."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.sandbox import Sandbox, SandboxUnavailable, make_sandbox
from pagerpatch.settings import Settings


@dataclass
class FixgenDeps:
    workspaces: Workspaces
    sandbox: Sandbox | None
    sandbox_problem: str | None
    timeout_s: float
    repos: RepoRegistry


def bootstrap(s: Settings, pool: asyncpg.Pool) -> FixgenDeps:
    try:
        sandbox: Sandbox | None = make_sandbox(s.sandbox)
        problem = None
    except SandboxUnavailable as exc:
        sandbox, problem = None, str(exc)
    workspaces = Workspaces(s.state_dir / "workspaces" / "fixgen")
    return FixgenDeps(workspaces, sandbox, problem, s.sandbox.timeout_s, RepoRegistry(s, pool))

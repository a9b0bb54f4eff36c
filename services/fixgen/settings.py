"""Fixgen's view of the settings tree: workspaces and the sandbox."""

from __future__ import annotations

from dataclasses import dataclass

from pagerpatch.sandbox import Sandbox, SandboxUnavailable, make_sandbox
from pagerpatch.settings import Settings
from pagerpatch.worktrees import Workspaces


@dataclass
class FixgenDeps:
    workspaces: Workspaces
    sandbox: Sandbox | None
    sandbox_problem: str | None
    timeout_s: float


def make_deps(s: Settings) -> FixgenDeps:
    try:
        sandbox: Sandbox | None = make_sandbox(s.sandbox)
        problem = None
    except SandboxUnavailable as exc:
        sandbox, problem = None, str(exc)
    return FixgenDeps(Workspaces(s.state_dir / "workspaces" / "fixgen"), sandbox, problem, s.sandbox.timeout_s)

"""Fixgen service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.fixgen.adapters import WorktreeReverter, make_fix_agent, make_test_runner
from services.fixgen.handlers import service
from services.fixgen.modelpatch import ModelPatcher
from services.fixgen.settings import environments_root, make_workspaces, patch_policy
from services.fixgen.usecase import FixGenerator


def create_service() -> Service[FixGenerator]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> FixGenerator:
    """Fixgen's worktrees, sandbox, repository environments, registry and (with a model) the fix agent."""
    runner, problem = make_test_runner(settings.sandbox, environments_root(settings))
    worktrees = WorktreeReverter(make_workspaces(settings))
    agent = make_fix_agent(settings, pool)
    model = None
    if agent is not None:
        model = ModelPatcher(agent, worktrees, patch_policy(settings), settings.fixgen.max_attempts)
    return FixGenerator(
        repos=RepoRegistry(settings, pool),
        reverter=worktrees,
        tests=runner,
        sandbox_problem=problem,
        timeout_s=settings.sandbox.timeout_s,
        model=model,
    )


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

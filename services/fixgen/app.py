"""Fixgen service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.fixgen.adapters import WorktreeReverter, make_test_runner
from services.fixgen.handlers import service
from services.fixgen.settings import environments_root, make_workspaces
from services.fixgen.usecase import FixGenerator


def create_service() -> Service[FixGenerator]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> FixGenerator:
    """Fixgen's worktrees, sandbox, repository environments and registry, built once the pool exists."""
    runner, problem = make_test_runner(settings.sandbox, environments_root(settings))
    return FixGenerator(
        repos=RepoRegistry(settings, pool),
        reverter=WorktreeReverter(make_workspaces(settings)),
        tests=runner,
        sandbox_problem=problem,
        timeout_s=settings.sandbox.timeout_s,
    )


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

"""Diagnosis service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.diagnosis.adapters import GitCheckouts, PgAudit, limit_git_work
from services.diagnosis.handlers import service
from services.diagnosis.settings import make_workspaces
from services.diagnosis.usecase import Diagnosis


def create_service() -> Service[Diagnosis]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> Diagnosis:
    """Diagnosis's git worktrees, the repository registry and the audit log, built once the pool exists."""
    limit_git_work(settings.diagnosis.max_concurrent)
    return Diagnosis(
        repos=RepoRegistry(settings, pool),
        checkouts=GitCheckouts(make_workspaces(settings)),
        audit=PgAudit(pool),
    )


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

"""Notifier service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.notifier.adapters import PgNotifications, PgPullRequests
from services.notifier.handlers import service
from services.notifier.settings import make_scm
from services.notifier.usecase import Notifier


def create_service() -> Service[Notifier]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> Notifier:
    """The configured Scm, the repository registry and the Postgres stores, built once the pool exists."""
    return Notifier(
        scm=make_scm(settings),
        repos=RepoRegistry(settings, pool),
        pull_requests=PgPullRequests(pool),
        notifications=PgNotifications(pool),
    )


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

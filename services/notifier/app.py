"""Notifier service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.notifier.handlers import NotifierDeps, service
from services.notifier.settings import make_scm


def create_service() -> Service[NotifierDeps]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> NotifierDeps:
    return NotifierDeps(scm=make_scm(settings), repos=RepoRegistry(settings, pool), pool=pool)


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

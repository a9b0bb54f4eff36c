"""Diagnosis service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.diagnosis.handlers import DiagnosisDeps, service
from services.diagnosis.settings import make_workspaces


def create_service() -> Service[DiagnosisDeps]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> DiagnosisDeps:
    return DiagnosisDeps(workspaces=make_workspaces(settings), repos=RepoRegistry(settings, pool), pool=pool)


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

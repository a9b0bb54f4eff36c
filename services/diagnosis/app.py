"""Diagnosis service factory and entry point."""

from __future__ import annotations

from pagerpatch.runtime import Service, service_main
from pagerpatch.worktrees import Workspaces
from services.diagnosis.handlers import service
from services.diagnosis.settings import make_workspaces


def create_service() -> Service[Workspaces]:
    return service


def main() -> None:
    service_main(create_service(), make_workspaces)

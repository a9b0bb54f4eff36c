"""Diagnosis service factory and entry point."""

from __future__ import annotations

from pagerpatch.logs import setup_logging
from pagerpatch.runtime import Service, run_service
from pagerpatch.settings import get_settings
from pagerpatch.workspace import Workspaces
from services.diagnosis.handlers import service
from services.diagnosis.settings import make_workspaces


def create_service() -> Service[Workspaces]:
    return service


def main() -> None:
    settings = get_settings()
    setup_logging("diagnosis", settings.log_level)
    run_service(create_service(), settings, make_workspaces)

"""Notifier service factory and entry point."""

from __future__ import annotations

from pagerpatch.logs import setup_logging
from pagerpatch.runtime import Service, run_service
from pagerpatch.scm import LocalGitScm
from pagerpatch.settings import get_settings
from services.notifier.handlers import service
from services.notifier.settings import make_scm


def create_service() -> Service[LocalGitScm]:
    return service


def main() -> None:
    settings = get_settings()
    setup_logging("notifier", settings.log_level)
    run_service(create_service(), settings, make_scm)

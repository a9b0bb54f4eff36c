"""Triage service factory and entry point."""

from __future__ import annotations

from pagerpatch.logs import setup_logging
from pagerpatch.runtime import Service, run_service
from pagerpatch.settings import get_settings
from services.triage.handlers import service
from services.triage.settings import TriageConfig


def create_service() -> Service[TriageConfig]:
    return service


def main() -> None:
    settings = get_settings()
    setup_logging("triage", settings.log_level)
    run_service(create_service(), settings, TriageConfig.from_settings)

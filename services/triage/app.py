"""Triage service factory and entry point."""

from __future__ import annotations

from pagerpatch.runtime import Service, service_main
from services.triage.handlers import service
from services.triage.settings import TriageConfig


def create_service() -> Service[TriageConfig]:
    return service


def main() -> None:
    service_main(create_service(), TriageConfig.from_settings)

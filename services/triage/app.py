"""Triage service factory and entry point."""

from __future__ import annotations

from pagerpatch.runtime import Service, service_main
from services.triage.deps import TriageDeps
from services.triage.handlers import service


def create_service() -> Service[TriageDeps]:
    return service


def main() -> None:
    service_main(create_service(), TriageDeps.from_settings)

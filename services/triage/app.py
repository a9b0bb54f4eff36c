"""Triage service factory and entry point."""

from __future__ import annotations

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from services.triage.deps import TriageDeps, bootstrap
from services.triage.handlers import service


def create_service() -> Service[TriageDeps]:
    return service


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

"""Fixgen service factory and entry point."""

from __future__ import annotations

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from services.fixgen.handlers import service
from services.fixgen.settings import FixgenDeps, bootstrap


def create_service() -> Service[FixgenDeps]:
    return service


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

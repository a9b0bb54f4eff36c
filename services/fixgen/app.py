"""Fixgen service factory and entry point."""

from __future__ import annotations

from pagerpatch.logs import setup_logging
from pagerpatch.runtime import Service, run_service
from pagerpatch.settings import get_settings
from services.fixgen.handlers import service
from services.fixgen.settings import FixgenDeps, make_deps


def create_service() -> Service[FixgenDeps]:
    return service


def main() -> None:
    settings = get_settings()
    setup_logging("fixgen", settings.log_level)
    run_service(create_service(), settings, make_deps)

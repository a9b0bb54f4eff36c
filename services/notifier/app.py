"""Notifier service factory and entry point."""

from __future__ import annotations

from pagerpatch.runtime import Service, service_main
from pagerpatch.scm import LocalGitScm
from services.notifier.handlers import service
from services.notifier.settings import make_scm


def create_service() -> Service[LocalGitScm]:
    return service


def main() -> None:
    service_main(create_service(), make_scm)

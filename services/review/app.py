"""Review service factory and entry point."""

from __future__ import annotations

from pagerpatch.logs import setup_logging
from pagerpatch.runtime import Service, run_service
from pagerpatch.settings import get_settings
from services.review.handlers import service
from services.review.logic import RiskPolicy
from services.review.settings import risk_policy


def create_service() -> Service[RiskPolicy]:
    return service


def main() -> None:
    settings = get_settings()
    setup_logging("review", settings.log_level)
    run_service(create_service(), settings, risk_policy)

"""Review service factory and entry point."""

from __future__ import annotations

from pagerpatch.runtime import Service, service_main
from services.review.handlers import service
from services.review.logic import RiskPolicy
from services.review.settings import risk_policy


def create_service() -> Service[RiskPolicy]:
    return service


def main() -> None:
    service_main(create_service(), risk_policy)

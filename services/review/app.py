"""Review service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.review.handlers import ReviewDeps, service
from services.review.settings import risk_policy


def create_service() -> Service[ReviewDeps]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> ReviewDeps:
    return ReviewDeps(policy=risk_policy(settings), pool=pool)


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

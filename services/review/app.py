"""Review service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.settings import Settings
from services.review.adapters import PgApprovals, PgAudit
from services.review.handlers import service
from services.review.settings import risk_policy
from services.review.usecase import Review


def create_service() -> Service[Review]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> Review:
    """Review's policy and its Postgres ports, built once the pool exists."""
    return Review(policy=risk_policy(settings), approvals=PgApprovals(pool), audit=PgAudit(pool))


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

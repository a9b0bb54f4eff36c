"""Review service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.llm import load_governance
from pagerpatch.llm.config import llm_enabled
from pagerpatch.settings import Settings
from services.review.adapters import PgApprovals, PgAudit, make_critic
from services.review.handlers import service
from services.review.settings import risk_policy
from services.review.usecase import Review


def create_service() -> Service[Review]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> Review:
    """Review's policy, its Postgres ports and the review agent (when a model is configured), built once the pool
    exists."""
    if llm_enabled(settings):
        load_governance(settings.llm.config_dir)  # a broken tools/agents/policies file fails start-up, clearly
    return Review(
        policy=risk_policy(settings),
        approvals=PgApprovals(pool),
        audit=PgAudit(pool),
        critic=make_critic(settings, pool),
    )


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

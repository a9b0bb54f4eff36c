"""Diagnosis service factory and entry point."""

from __future__ import annotations

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.knowledge import MemoryKnowledge
from pagerpatch.llm import LlmRuntime, ToolRegistry
from pagerpatch.llm.config import llm_enabled
from pagerpatch.settings import Settings
from services.diagnosis.adapters import GitCheckouts, PgAudit, SyncedKnowledge, limit_git_work
from services.diagnosis.handlers import service
from services.diagnosis.investigation import Investigation
from services.diagnosis.settings import make_workspaces
from services.diagnosis.usecase import Diagnosis


def create_service() -> Service[Diagnosis]:
    return service


async def bootstrap(settings: Settings, pool: asyncpg.Pool) -> Diagnosis:
    """Diagnosis's git worktrees, the repository registry and the audit log, built once the pool exists; with a
    model configured, the knowledge folder is indexed now (`knowledge.sync_on_start`)."""
    limit_git_work(settings.diagnosis.max_concurrent)
    investigator = make_investigator(settings, pool)
    if investigator is not None and isinstance(investigator.knowledge, SyncedKnowledge):
        await investigator.knowledge.start()
    return Diagnosis(
        repos=RepoRegistry(settings, pool),
        checkouts=GitCheckouts(make_workspaces(settings)),
        audit=PgAudit(pool),
        investigator=investigator,
    )


def make_investigator(settings: Settings, pool: asyncpg.Pool | None) -> Investigation | None:
    """The investigation agent when a model is configured; None otherwise (the deterministic diagnosis stands).
    Invalid agent-runtime files (tools/agents/policies) fail start-up with their file:line message."""
    if not llm_enabled(settings):
        return None
    runtime = LlmRuntime.create(settings, pool, ToolRegistry(settings))
    knowledge = SyncedKnowledge(pool, settings) if pool is not None else MemoryKnowledge([])
    return Investigation(runtime, knowledge, settings.service_catalog)


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

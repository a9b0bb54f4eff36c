"""Triage service factory and entry point: the handler's dependencies, built once the pool exists."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.llm import load_governance
from pagerpatch.llm.config import llm_enabled
from pagerpatch.settings import Settings
from services.triage.adapters import PgTriageStore, make_hint
from services.triage.handlers import service
from services.triage.ports import PruningTriageStore, SoftHint
from services.triage.settings import TriageConfig


@dataclass
class TriageDeps:
    """What the triage handler needs besides its event: the rules, the store and the model's hint."""

    settings: Settings
    config: TriageConfig
    store: PruningTriageStore
    hint: SoftHint


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> TriageDeps:
    """Triage's rules, store and model hint, built once the pool exists."""
    if settings.triage.llm_hint and llm_enabled(settings):
        load_governance(settings.llm.config_dir)  # a broken tools/agents/policies file fails start-up, clearly
    return TriageDeps(
        settings=settings,
        config=TriageConfig.from_settings(settings),
        store=PgTriageStore(pool, settings),
        hint=make_hint(settings, pool),
    )


def create_service() -> Service[TriageDeps]:
    """The triage service: one handler on the `triage` consumer (alert.received)."""
    return service


def main() -> None:
    """`python -m services.triage`: run until SIGTERM, recording each handoff on the incident's timeline."""
    service_main(create_service(), bootstrap, finish=finish_handoff)

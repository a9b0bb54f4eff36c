"""What the triage handler needs besides its event: the rules, and (bound on first use) the store and hint."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from pagerpatch.llm import load_governance
from pagerpatch.llm.config import llm_enabled
from pagerpatch.settings import Settings
from services.triage.adapters import PgTriageStore, make_hint
from services.triage.engine import SoftHint
from services.triage.settings import TriageConfig


@dataclass
class TriageDeps:
    settings: Settings
    config: TriageConfig
    store: PgTriageStore
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

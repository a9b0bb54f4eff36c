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
    store: PgTriageStore | None = None
    hint: SoftHint | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TriageDeps:
        if settings.triage.llm_hint and llm_enabled(settings):
            load_governance(settings.llm.config_dir)  # a broken tools/agents/policies file fails start-up, clearly
        return cls(settings=settings, config=TriageConfig.from_settings(settings))

    def bind(self, pool: asyncpg.Pool) -> tuple[PgTriageStore, SoftHint]:
        """The store and the model hint on the runtime's pool (made once, on the first alert)."""
        if self.store is None:
            self.store = PgTriageStore(pool, self.settings)
        if self.hint is None:
            self.hint = make_hint(self.settings, pool)
        return self.store, self.hint

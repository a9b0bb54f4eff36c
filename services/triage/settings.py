"""Triage's view of the settings tree: the triage rules and the service catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pagerpatch.settings import ServiceEntry, Settings, TriageSettings


@dataclass(frozen=True)
class TriageConfig:
    rules: TriageSettings = field(default_factory=TriageSettings)
    catalog: dict[str, ServiceEntry] = field(default_factory=dict)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.rules.dedup_window_s)

    def tier(self, service: str) -> int | None:
        entry = self.catalog.get(service)
        return entry.tier if entry else None

    def team(self, service: str) -> str | None:
        entry = self.catalog.get(service)
        return entry.team if entry else None

    @classmethod
    def from_settings(cls, s: Settings) -> TriageConfig:
        return cls(rules=s.triage, catalog=dict(s.service_catalog))

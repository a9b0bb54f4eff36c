"""Triage's view of the settings tree: the triage rules and the service catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from pagerpatch.settings import ServiceEntry, Settings, TriageSettings
from services.triage.domain.fingerprint import IdentityRules


@dataclass(frozen=True)
class TriageConfig:
    """The triage rules and the service catalog, as the use case and the pure rules read them."""

    rules: TriageSettings = field(default_factory=TriageSettings)
    catalog: dict[str, ServiceEntry] = field(default_factory=dict)

    @cached_property
    def identity(self) -> IdentityRules:
        """What an alert's identity leaves out (volatile labels) and how CloudWatch alarms are grouped."""
        return IdentityRules(
            volatile_labels=frozenset(label.strip().lower() for label in self.rules.volatile_labels),
            cloudwatch_per_instance=tuple(self.rules.cloudwatch_per_instance),
        )

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

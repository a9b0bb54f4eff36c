"""Triage's view of the settings tree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pagerpatch.settings import Settings
from schemas.events import Severity


@dataclass(frozen=True)
class TriageConfig:
    window: timedelta
    default_severity: Severity
    tiers: dict[str, int]

    @classmethod
    def from_settings(cls, s: Settings) -> TriageConfig:
        return cls(
            window=timedelta(seconds=s.triage.dedup_window_s),
            default_severity=s.triage.default_severity,
            tiers={name: entry.tier for name, entry in s.service_catalog.items()},
        )

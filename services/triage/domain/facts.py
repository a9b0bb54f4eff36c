"""The values triage's rules work on (pure): one alert's facts, the group's history, the live incident, decisions.

Plain frozen dataclasses, so the rules stay functions of values and the stores (Postgres, in memory) map rows to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from schemas.events import AlertReceivedPayload, Severity
from services.triage.domain.fingerprint import AlertKeys, keys, top_frames

Classification = Literal["real", "noise", "duplicate"]


@dataclass(frozen=True)
class AlertFacts:
    """What the rules look at in one alert (plain values; built from the event by `facts`)."""

    event_id: str
    keys: AlertKeys
    at: datetime
    source: str
    service: str
    status: str
    title: str
    kind: str | None = None
    severity_hint: str | None = None
    noise_hint: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    has_trace: bool = False


def facts(event_id: str, alert: AlertReceivedPayload, at: datetime) -> AlertFacts:
    """The alert's facts: its keys, its normalized kind and whether it carries a parseable stack trace."""
    return AlertFacts(
        event_id=event_id,
        keys=keys(alert),
        at=at,
        source=alert.source,
        service=alert.service,
        status=alert.status,
        title=alert.title,
        kind=(alert.kind or "").strip().lower() or None,
        severity_hint=alert.severity_hint,
        noise_hint=alert.noise_hint,
        labels=dict(alert.labels),
        has_trace=bool(top_frames(alert.stack_trace)),
    )


@dataclass(frozen=True)
class Observation:
    """One earlier alert of the same group, as the history store keeps it."""

    event_id: str
    fingerprint: str
    resource: str | None
    status: str
    at: datetime
    decision: str
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveIncident:
    """The group's newest incident not yet in a terminal state (what a new alert may be a duplicate of)."""

    id: str
    last_seen_at: datetime
    occurrences: int
    severity: Severity = Severity.P2
    state: str = "open"
    opened_at: datetime | None = None


@dataclass(frozen=True)
class Hint:
    """A soft verdict (from a model) for an alert the rules left undecided."""

    classification: Literal["real", "noise"]
    severity: Severity | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What triage decided for one alert, with the rules that fired and the reasons a person reads."""

    classification: Classification
    severity: Severity
    reasons: tuple[str, ...]
    rules: tuple[str, ...]
    incident_id: str | None = None  # the live incident a duplicate or resolution belongs to
    close: bool = False  # a resolution closes that incident
    supersede: str | None = None  # a stale live incident to close before opening a new one
    undecided: bool = False  # no rule decided; the documented default (or a hint) did

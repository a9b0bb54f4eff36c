"""The values triage's rules work on (pure): one alert's facts, the group's history, the live incident, decisions.

Plain frozen dataclasses, so the rules stay functions of values and the stores (Postgres, in memory) map rows to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from schemas.events import AlertReceivedPayload, Severity
from services.triage.domain.fingerprint import DEFAULT_RULES, AlertKeys, IdentityRules, keys, top_frames

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


def facts(
    event_id: str, alert: AlertReceivedPayload, at: datetime, identity: IdentityRules = DEFAULT_RULES
) -> AlertFacts:
    """The alert's facts: its keys, its normalized kind and whether it carries a parseable stack trace."""
    return AlertFacts(
        event_id=event_id,
        keys=keys(alert, identity),
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
    incident_id: str | None = None  # the incident the decision opened, counted on, reopened or closed


@dataclass(frozen=True)
class Member:
    """One alert (fingerprint and resource) of a live incident's group, in the state it was last seen in."""

    fingerprint: str
    resource: str | None
    status: str
    at: datetime


@dataclass(frozen=True)
class LiveIncident:
    """The group's newest incident not yet in a terminal state (what a new alert may be a duplicate of).

    `members` (read for resolutions and stale incidents) holds every alert of the group seen since shortly before
    the incident opened, each in its latest state: the incident closes only when none of them is still firing.
    """

    id: str
    last_seen_at: datetime
    occurrences: int
    severity: Severity = Severity.P2
    state: str = "open"
    opened_at: datetime | None = None
    members: tuple[Member, ...] = ()
    group_key: str | None = None  # its group, when found through the alert's alias (or a link) rather than its own


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
    reopen: bool = False  # a re-fire soon after triage closed `incident_id`: reopen it, then count the alert on it
    raise_severity: bool = False  # the alert says the live incident is more urgent: its severity becomes ours

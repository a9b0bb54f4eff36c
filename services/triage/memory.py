"""An in-memory triage store with the Postgres store's semantics, for the eval and for fast tests.

It keeps incidents and observations in dicts; `tests/integration/test_triage_store.py` replays the golden
dataset through both stores and requires identical decisions, so the eval's figures hold for production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from pagerpatch.incidents.state import CLOSABLE, TERMINAL
from schemas.events import Severity
from services.triage.domain import AlertFacts, Decision, LiveIncident, Member, Observation
from services.triage.ports import CLOSED_AT_SOURCE, Loaded, Prior


@dataclass
class MemIncident:
    """An incident row as the Postgres store keeps it (the columns triage reads and writes)."""

    id: uuid.UUID
    group_key: str
    title: str
    service: str
    severity: Severity
    repo: str | None
    team: str | None
    reasons: tuple[str, ...]
    opened_at: datetime
    last_seen_at: datetime
    state: str = "open"
    occurrences: int = 1
    outcome: str | None = None
    closed_from: str | None = None  # the state triage closed it in (a reopen returns to it)


@dataclass
class MemObservation:
    """An alert_observations row: the alert and the decision taken for it."""

    alert: AlertFacts
    decision: Decision
    incident_id: uuid.UUID | None


@dataclass
class MemoryTriageStore:
    """Incidents and observations in dicts, shared by every unit (no group lock: the eval and the unit tests triage
    one alert at a time)."""

    repos: dict[str, str] = field(default_factory=dict)  # service -> repository name
    incidents: dict[uuid.UUID, MemIncident] = field(default_factory=dict)
    observations: dict[str, MemObservation] = field(default_factory=dict)

    @asynccontextmanager
    async def unit(self, group_key: str, exclusive: bool = True) -> AsyncIterator[MemoryUnit]:
        yield MemoryUnit(self)

    async def maybe_prune(self) -> int:
        """Nothing to prune: an in-memory store lives for one eval case or one test."""
        return 0

    def live(self, group_key: str, alias: str | None = None, follow_link: bool = False) -> MemIncident | None:
        """The group's newest non-terminal incident, or its alias group's, or the one a link in the group points to
        (what the Postgres read's `live` row is)."""
        linked: uuid.UUID | None = None
        if follow_link:
            links = [o for o in self.observations.values() if o.alert.keys.group_key == group_key
                     and "link" in o.decision.rules]  # fmt: skip
            linked = max(links, key=lambda o: o.alert.at).incident_id if links else None
        live = [
            i for i in self.incidents.values()
            if (i.group_key in (group_key, alias) or i.id == linked) and i.state not in TERMINAL
        ]  # fmt: skip
        return max(live, key=lambda i: i.last_seen_at) if live else None


class MemoryUnit:
    """A unit of work on the in-memory store (ports.TriageUnit)."""

    def __init__(self, store: MemoryTriageStore) -> None:
        self.store = store

    async def load(
        self, alert: AlertFacts, incident_id: uuid.UUID, since: datetime, limit: int, absorbed_since: datetime
    ) -> Loaded:
        s = self.store
        prior: Prior | None = None
        seen = s.observations.get(alert.event_id)
        if seen is not None:
            inc = s.incidents.get(seen.incident_id) if seen.incident_id else None
            prior = Prior(
                seen.decision,
                str(seen.incident_id) if seen.incident_id else None,
                inc.occurrences if inc else 1,
                inc.repo if inc else None,
            )
        live = s.live(alert.keys.group_key, alert.keys.alias, alert.keys.linkable)
        # Sorted by time, ties in the order recorded (dicts keep insertion order; the sort is stable).
        everything = sorted(
            (o for o in s.observations.values() if o.alert.keys.group_key == alert.keys.group_key),
            key=lambda o: o.alert.at,
        )
        group = [o for o in everything if o.alert.at >= since][-limit:]
        members: dict[tuple[str, str | None], Member] = {}
        if live is not None:
            start = live.opened_at - (alert.at - since)
            for o in everything:
                if o.alert.at >= start:
                    a = o.alert
                    members[(a.keys.fingerprint, a.keys.resource)] = Member(
                        a.keys.fingerprint, a.keys.resource, a.status, a.at
                    )
        return Loaded(
            prior=prior,
            live=LiveIncident(
                id=str(live.id), last_seen_at=live.last_seen_at, occurrences=live.occurrences,
                severity=live.severity, state=live.state, opened_at=live.opened_at, members=tuple(members.values()),
                group_key=live.group_key,
            ) if live else None,
            history=[
                Observation(
                    event_id=o.alert.event_id, fingerprint=o.alert.keys.fingerprint, resource=o.alert.keys.resource,
                    status=o.alert.status, at=o.alert.at, decision=o.decision.classification, rules=o.decision.rules,
                    incident_id=str(o.incident_id) if o.incident_id else None,
                )
                for o in group
            ],
        )  # fmt: skip

    async def repo_for(self, service: str) -> str | None:
        return self.store.repos.get(service)

    async def open_incident(
        self, alert: AlertFacts, decision: Decision, incident_id: uuid.UUID, repo: str | None, team: str | None
    ) -> bool:
        s = self.store
        if incident_id in s.incidents or s.live(alert.keys.group_key) is not None:
            return False
        s.incidents[incident_id] = MemIncident(
            id=incident_id, group_key=alert.keys.group_key, title=alert.title, service=alert.service,
            severity=decision.severity, repo=repo, team=team, reasons=decision.reasons, opened_at=alert.at,
            last_seen_at=alert.at,
        )  # fmt: skip
        return True

    async def record(self, alert: AlertFacts, decision: Decision, incident_id: uuid.UUID | None) -> int:
        s = self.store
        if alert.event_id in s.observations:
            inc = s.incidents.get(incident_id) if incident_id else None
            return inc.occurrences if inc else 1
        s.observations[alert.event_id] = MemObservation(alert, decision, incident_id)
        inc = s.incidents.get(incident_id) if incident_id else None
        if inc is None or decision.classification != "duplicate":
            return 1
        if alert.status == "firing":
            inc.occurrences += 1
            inc.last_seen_at = max(inc.last_seen_at, alert.at)
        return inc.occurrences

    async def close_incident(self, incident_id: uuid.UUID, outcome: str) -> bool:
        inc = self.store.incidents.get(incident_id)
        if inc is None or inc.state not in CLOSABLE:
            return False
        inc.state, inc.outcome, inc.closed_from = "resolved", outcome, inc.state
        return True

    async def link(self, alert: AlertFacts, group_key: str, incident_id: uuid.UUID) -> None:
        link_id = str(uuid.uuid5(uuid.UUID(alert.event_id), "triage:link"))
        if link_id in self.store.observations:
            return
        linked = replace(alert, event_id=link_id, keys=replace(alert.keys, group_key=group_key))
        decision = Decision("duplicate", Severity.P3, (f"link: group {group_key} points to incident {incident_id}",),
                            ("link",))  # fmt: skip
        self.store.observations[link_id] = MemObservation(linked, decision, incident_id)

    async def reopen_incident(self, incident_id: uuid.UUID) -> bool:
        s = self.store
        inc = s.incidents.get(incident_id)
        if inc is None or inc.state != "resolved" or not (inc.outcome or "").startswith(CLOSED_AT_SOURCE):
            return False
        if s.live(inc.group_key) is not None:
            return False
        inc.state, inc.outcome = inc.closed_from or "open", None
        return True

    async def raise_severity(self, incident_id: uuid.UUID, severity: Severity) -> bool:
        inc = self.store.incidents.get(incident_id)
        if inc is None or severity.value >= inc.severity.value:
            return False
        inc.severity = severity
        return True

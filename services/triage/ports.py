"""What the triage use case needs from the world: a store of incidents and alert history, and a soft hint.

Two implementations each: adapters (Postgres, the model through the agent runtime) and memory (dicts, no hint),
so the unit tests and the golden eval run the very code the service runs.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from schemas.events import AlertReceived, Severity
from services.triage.domain import AlertFacts, Decision, Hint, LiveIncident, Observation

CLOSED_AT_SOURCE = "resolved at source"  # the outcome triage closes an incident with (and may reopen it from)


@dataclass(frozen=True)
class Prior:
    """The decision already committed for this very alert (a re-run returns it instead of deciding again)."""

    decision: Decision
    incident_id: str | None
    occurrences: int
    repo: str | None


@dataclass(frozen=True)
class Loaded:
    """Everything one decision reads, in one go: a prior decision, the group's live incident and its history."""

    prior: Prior | None
    live: LiveIncident | None
    history: list[Observation]


class TriageUnit(Protocol):
    """The store inside one transaction, with the alert's group locked against other triage replicas."""

    async def load(
        self, alert: AlertFacts, incident_id: uuid.UUID, since: datetime, limit: int, absorbed_since: datetime
    ) -> Loaded:  # pragma: no cover
        """State for deciding `alert`; the history may be left out when a firing alert meets a live incident
        seen at or after `absorbed_since` (it is a duplicate whatever the history says). With the history comes the
        live incident's members: the group's alerts seen since `alert.at - since` before it opened, each in its
        latest state."""
        ...

    async def repo_for(self, service: str) -> str | None:
        """The repository that serves `service` (None: the incident opens without one)."""
        ...  # pragma: no cover

    async def open_incident(
        self, alert: AlertFacts, decision: Decision, incident_id: uuid.UUID, repo: str | None, team: str | None
    ) -> bool:
        """Open the group's incident; False when the group already has a live one (another writer won)."""
        ...  # pragma: no cover

    async def record(self, alert: AlertFacts, decision: Decision, incident_id: uuid.UUID | None) -> int:
        """Keep the alert and its decision in the history (a firing duplicate also counts on its incident);
        returns the incident's occurrences (1 without one). Recording the same alert twice changes nothing."""
        ...  # pragma: no cover

    async def close_incident(self, incident_id: uuid.UUID, outcome: str) -> bool:
        """Resolve the incident if nothing downstream produced a fix yet; False when it is past that."""
        ...  # pragma: no cover

    async def reopen_incident(self, incident_id: uuid.UUID) -> bool:
        """Reopen an incident triage closed at the source's resolution; False when it was closed otherwise, is gone,
        or its group has a live incident again."""
        ...  # pragma: no cover

    async def raise_severity(self, incident_id: uuid.UUID, severity: Severity) -> bool:
        """Make the incident at least as urgent as `severity`; False when it already was."""
        ...  # pragma: no cover

    async def link(self, alert: AlertFacts, group_key: str, incident_id: uuid.UUID) -> None:
        """Point another group (the alert's alias) to the incident the alert opened, so that group's alerts join it."""
        ...  # pragma: no cover


class TriageStore(Protocol):
    """Where triage keeps incidents and alert history, worked on in units (see `unit`)."""

    def unit(self, group_key: str, exclusive: bool = True) -> AbstractAsyncContextManager[TriageUnit]:
        """A unit of work; `exclusive` ones are one transaction holding the group's lock, others plain reads
        and single atomic writes (used only to count a firing duplicate)."""
        ...  # pragma: no cover


class PruningTriageStore(TriageStore, Protocol):
    """The service's store: its alert history is kept bounded (retention and a per-group cap) as alerts flow."""

    async def maybe_prune(self) -> int:
        """Delete history past retention; cheap when it is not yet time (returns the rows deleted)."""
        ...  # pragma: no cover


class SoftHint(Protocol):
    """A second opinion for alerts no rule decides (a model); `enabled` False means never asked."""

    @property
    def enabled(self) -> bool: ...  # pragma: no cover

    async def classify(self, event: AlertReceived, decision: Decision) -> Hint | None:
        """A verdict for an undecided alert, or None (no answer: the documented default applies)."""
        ...  # pragma: no cover


class NoHint:
    """The deterministic default: no second opinion; undecided alerts follow `triage.undecided`."""

    enabled = False

    async def classify(self, event: AlertReceived, decision: Decision) -> Hint | None:
        return None

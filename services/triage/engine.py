"""One alert through triage: read the group's state, decide (pure), apply the decision, build the outputs.

The same code runs in the service (Postgres store) and in `pagerpatch eval triage` (in-memory store), so the
golden eval measures what production does. The store is a small Protocol (see adapters.PgTriageStore and
memory.MemoryTriageStore); each unit of work is one transaction in which the group is locked.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from schemas.envelope import Event
from schemas.events import (
    AlertReceived,
    AlertSuppressed,
    AlertSuppressedPayload,
    IncidentOpened,
    IncidentOpenedPayload,
)
from services.triage import logic
from services.triage.logic import AlertFacts, Decision, Hint, LiveIncident, Observation
from services.triage.settings import TriageConfig

STAGE = "triage"
MAX_ATTEMPTS = 3
NO_VERDICT = "llm_hint: no verdict (model unavailable, over budget or invalid answer); the default applies"


@dataclass(frozen=True)
class Prior:
    """The decision already committed for this very alert (a re-run returns it instead of deciding again)."""

    decision: Decision
    incident_id: str | None
    occurrences: int
    repo: str | None


@dataclass(frozen=True)
class Loaded:
    prior: Prior | None
    live: LiveIncident | None
    history: list[Observation]


class TriageUnit(Protocol):
    """The store inside one transaction, with the alert's group locked against other triage replicas."""

    async def load(
        self, alert: AlertFacts, incident_id: uuid.UUID, since: datetime, limit: int, absorbed_since: datetime
    ) -> Loaded:  # pragma: no cover
        """State for deciding `alert`; the history may be left out when a firing alert meets a live incident
        seen at or after `absorbed_since` (it is a duplicate whatever the history says)."""
        ...

    async def repo_for(self, service: str) -> str | None: ...  # pragma: no cover

    async def open_incident(
        self, alert: AlertFacts, decision: Decision, incident_id: uuid.UUID, repo: str | None, team: str | None
    ) -> bool: ...  # pragma: no cover

    async def record(
        self, alert: AlertFacts, decision: Decision, incident_id: uuid.UUID | None
    ) -> int: ...  # pragma: no cover

    async def close_incident(self, incident_id: uuid.UUID, outcome: str) -> bool: ...  # pragma: no cover


class TriageStore(Protocol):
    def unit(self, group_key: str, exclusive: bool = True) -> AbstractAsyncContextManager[TriageUnit]:
        """A unit of work; `exclusive` ones are one transaction holding the group's lock, others plain reads
        and single atomic writes (used only to count a firing duplicate)."""
        ...  # pragma: no cover


class SoftHint(Protocol):
    """A second opinion for alerts no rule decides (a model); `enabled` False means never asked."""

    @property
    def enabled(self) -> bool: ...  # pragma: no cover

    async def classify(self, event: AlertReceived, decision: Decision) -> Hint | None: ...  # pragma: no cover


class NoHint:
    """The deterministic default: no second opinion; undecided alerts follow `triage.undecided`."""

    enabled = False

    async def classify(self, event: AlertReceived, decision: Decision) -> Hint | None:
        return None


@dataclass(frozen=True)
class Result:
    decision: Decision
    outputs: list[Event[Any]]
    incident_id: uuid.UUID | None
    replayed: bool = False  # the decision was taken before (a re-run)


def incident_id_for(event: AlertReceived) -> uuid.UUID:
    return uuid.uuid5(event.event_id, "triage:incident")


async def triage(
    event: AlertReceived, store: TriageStore, config: TriageConfig, hint: SoftHint, now: datetime
) -> Result:
    """Decide one alert and apply the decision; safe to run again for the same event (same result)."""
    alert = event.payload
    at = alert.occurred_at or event.occurred_at
    facts = logic.facts(str(event.event_id), alert, at)
    new_id = incident_id_for(event)
    rules = config.rules
    since = at - timedelta(seconds=rules.history_window_s)
    verdict: Hint | None = None
    asked = False
    # First optimistically, without the group lock: a firing alert that a live incident absorbs is decided and
    # counted in one atomic statement, so a storm's duplicates do not queue behind each other. Anything else is
    # decided again under the group lock.
    exclusive = False
    for _ in range(MAX_ATTEMPTS + 1):
        async with store.unit(facts.keys.group_key, exclusive=exclusive) as unit:
            loaded = await unit.load(facts, new_id, since, rules.history_max_per_group, now - config.window)
            if loaded.prior is not None:
                return _replay(event, facts, loaded.prior)
            decision = logic.decide(facts, loaded.history, loaded.live, config, now, verdict)
            if asked and verdict is None and decision.undecided:
                decision = replace(decision, reasons=(*decision.reasons, NO_VERDICT))
            lock_free = decision.classification == "duplicate" and facts.status == "firing"
            if not exclusive and not lock_free:
                exclusive = True
                continue
            if not (decision.undecided and hint.enabled and not asked):
                result = await _apply(unit, event, facts, decision, new_id, config)
                if result is not None:
                    return result
                continue  # another writer opened this group's incident meanwhile: decide again
        # Ask the model outside the transaction (no lock held while it thinks), then decide again.
        asked = True
        verdict = await hint.classify(event, decision)
    raise RuntimeError(f"triage of {event.event_id} did not settle after {MAX_ATTEMPTS} attempts")


async def _apply(
    unit: TriageUnit,
    event: AlertReceived,
    facts: AlertFacts,
    decision: Decision,
    new_id: uuid.UUID,
    config: TriageConfig,
) -> Result | None:
    if decision.classification == "real":
        if decision.supersede:
            await unit.close_incident(
                uuid.UUID(decision.supersede), f"superseded by incident {new_id}: not seen within the dedup window"
            )
        repo = await unit.repo_for(facts.service)
        team = event.team or config.team(facts.service)
        if not await unit.open_incident(facts, decision, new_id, repo, team):
            return None
        await unit.record(facts, decision, new_id)
        return Result(decision, [_opened(event, facts, decision, new_id, repo)], new_id)
    if decision.classification == "duplicate" and decision.incident_id:
        incident = uuid.UUID(decision.incident_id)
        occurrences = await unit.record(facts, decision, incident)
        if decision.close:
            await unit.close_incident(incident, "resolved at source: every alert of its group resolved")
        return Result(decision, [_suppressed(event, facts, decision, incident, occurrences)], incident)
    await unit.record(facts, decision, None)
    return Result(decision, [_suppressed(event, facts, decision, None, 1)], None)


def _replay(event: AlertReceived, facts: AlertFacts, prior: Prior) -> Result:
    d = prior.decision
    incident = uuid.UUID(prior.incident_id) if prior.incident_id else None
    if d.classification == "real" and incident is not None:
        return Result(d, [_opened(event, facts, d, incident, prior.repo)], incident, replayed=True)
    return Result(d, [_suppressed(event, facts, d, incident, prior.occurrences)], incident, replayed=True)


def _opened(
    event: AlertReceived, facts: AlertFacts, decision: Decision, incident_id: uuid.UUID, repo: str | None
) -> IncidentOpened:
    alert = event.payload
    return event.derive(
        IncidentOpened,
        IncidentOpenedPayload(
            fingerprint=facts.keys.group_key,
            title=alert.title,
            service=alert.service,
            severity=decision.severity,
            repo=repo,
            description=alert.description,
            stack_trace=alert.stack_trace,
            commit=alert.commit,
            labels=dict(alert.labels),
            reasons=[r[:500] for r in decision.reasons],
        ),
        stage=STAGE,
        incident_id=incident_id,
    )


def _suppressed(
    event: AlertReceived, facts: AlertFacts, decision: Decision, incident_id: uuid.UUID | None, occurrences: int
) -> AlertSuppressed:
    return event.derive(
        AlertSuppressed,
        AlertSuppressedPayload(
            fingerprint=facts.keys.group_key,
            reason="duplicate" if decision.classification == "duplicate" else "noise",
            incident_id=incident_id,
            occurrences=max(1, occurrences),
            reasons=[r[:500] for r in decision.reasons],
        ),
        stage=STAGE,
        incident_id=incident_id,
    )

"""One alert through triage: read the group's state, decide (pure), apply the decision, build the outputs.

The same code runs in the service (Postgres store) and in `pagerpatch eval triage` (in-memory store), so the
golden eval measures what production does. The store is a small Protocol (ports.TriageStore, implemented by
adapters.PgTriageStore and memory.MemoryTriageStore); each unit of work is one transaction in which the group is
locked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from schemas.envelope import Event
from schemas.events import (
    AlertReceived,
    AlertSuppressed,
    AlertSuppressedPayload,
    IncidentOpened,
    IncidentOpenedPayload,
)
from services.triage import domain
from services.triage.domain import AlertFacts, Decision, Hint
from services.triage.domain.fingerprint import regrouped
from services.triage.ports import CLOSED_AT_SOURCE, Prior, PruningTriageStore, SoftHint, TriageStore, TriageUnit
from services.triage.settings import TriageConfig

STAGE = "triage"
MAX_ATTEMPTS = 4  # the lock, a group found through an alias, the model's hint, a concurrent opener
NO_VERDICT = "llm_hint: no verdict (model unavailable, over budget or invalid answer); the default applies"


@dataclass(frozen=True)
class Result:
    """The decision taken (or found, on a re-run) and the events it produces."""

    decision: Decision
    outputs: list[Event[Any]]
    incident_id: uuid.UUID | None
    replayed: bool = False  # the decision was taken before (a re-run)


def incident_id_for(event: AlertReceived) -> uuid.UUID:
    """The id of the incident this alert would open: deterministic, so a re-run opens the same one."""
    return uuid.uuid5(event.event_id, "triage:incident")


async def triage(
    event: AlertReceived, store: TriageStore, config: TriageConfig, hint: SoftHint, now: datetime
) -> Result:
    """Decide one alert and apply the decision; safe to run again for the same event (same result)."""
    alert = event.payload
    at = alert.occurred_at or event.occurred_at
    facts = domain.facts(str(event.event_id), alert, at, config.identity)
    new_id = incident_id_for(event)
    rules = config.rules
    since = at - timedelta(seconds=rules.history_window_s)
    verdict: Hint | None = None
    asked = False
    reopen = True  # False once the incident a re-fire would reopen turned out not reopenable
    # First optimistically, without the group lock: a firing alert that a live incident absorbs is decided and
    # counted in one atomic statement, so a storm's duplicates do not queue behind each other. Anything else is
    # decided again under the group lock.
    exclusive = False
    for _ in range(MAX_ATTEMPTS + 1):
        async with store.unit(facts.keys.group_key, exclusive=exclusive) as unit:
            loaded = await unit.load(facts, new_id, since, rules.history_max_per_group, now - config.window)
            if loaded.prior is not None:
                return _replay(event, facts, loaded.prior)
            found = loaded.live.group_key if loaded.live else None
            if found and found != facts.keys.group_key:
                # The live incident is the alias's or a linked group's: the alert joins that group (its lock, its
                # history, its members) and is decided there.
                facts = replace(facts, keys=regrouped(facts.keys, found, facts.source))
                continue
            decision = domain.decide(facts, loaded.history, loaded.live, config, now, verdict, reopen)
            if asked and verdict is None and decision.undecided:
                decision = replace(decision, reasons=(*decision.reasons, NO_VERDICT))
            lock_free = decision.classification == "duplicate" and facts.status == "firing" and not decision.reopen
            if not exclusive and not lock_free:
                exclusive = True
                continue
            if decision.reopen and decision.incident_id:
                if not await unit.reopen_incident(uuid.UUID(decision.incident_id)):
                    reopen = False  # closed otherwise meanwhile, or the group has a live incident: decide again
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


async def handle_alert(
    event: AlertReceived, store: PruningTriageStore, config: TriageConfig, hint: SoftHint, now: datetime
) -> Result:
    """The service's path: triage the alert, then keep the history bounded (after the decision, so pruning never
    holds the group lock; the store prunes at most once a minute)."""
    result = await triage(event, store, config, hint, now)
    await store.maybe_prune()
    return result


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
        if facts.keys.alias:  # a Sentry event opened under its trace: its issue's other alerts join this incident
            await unit.link(facts, facts.keys.alias, new_id)
        return Result(decision, [_opened(event, facts, decision, new_id, repo)], new_id)
    if decision.classification == "duplicate" and decision.incident_id:
        incident = uuid.UUID(decision.incident_id)
        occurrences = await unit.record(facts, decision, incident)
        if decision.raise_severity:
            await unit.raise_severity(incident, decision.severity)
        if decision.close:
            await unit.close_incident(incident, f"{CLOSED_AT_SOURCE}: every alert of its group resolved")
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
            # Carried on so diagnosis can replay the failing call (the alert's own events are not read again).
            frame_vars=list(alert.frame_vars),
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

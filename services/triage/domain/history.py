"""What the group's recent history says about an alert (pure): flapping changes, firing streaks, members still
firing, blast radius, and the incident triage closed last."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from services.triage.domain.facts import AlertFacts, Member, Observation

MemberKey = tuple[str, str | None]


def same_alert(o: Observation, alert: AlertFacts) -> bool:
    """Whether an observation is this very alert (same fingerprint and resource), not another of its group."""
    return o.fingerprint == alert.keys.fingerprint and o.resource == alert.keys.resource


def state_changes(history: Sequence[Observation], alert: AlertFacts, window: timedelta) -> int:
    """firing<->resolved changes of this alert (same fingerprint and resource) that happened within the window, this
    one included. A change counts when it happened in the window, however long the state before it lasted."""
    timeline = [(o.at, o.status) for o in history if same_alert(o, alert)]
    timeline.append((alert.at, alert.status))
    pairs = itertools.pairwise(timeline)
    return sum(1 for (_, before), (at, after) in pairs if before != after and alert.at - at <= window)


def firing_since(history: Sequence[Observation], alert: AlertFacts) -> datetime:
    """Start of this alert's current uninterrupted firing streak (its own time when it just started)."""
    start = alert.at
    for o in reversed([o for o in history if same_alert(o, alert)]):
        if o.status != "firing":
            break
        start = min(start, o.at)
    return start


def latest_states(
    members: Iterable[Member], history: Sequence[Observation], since: datetime | None
) -> dict[MemberKey, str]:
    """Each alert of the group in the state it was last seen in: the live incident's members, overlaid with the
    history since `since` (newer observations win; on a tie, the one listed later)."""
    seen: dict[MemberKey, tuple[datetime, str]] = {}
    observed = [(m.fingerprint, m.resource, m.at, m.status) for m in members]
    observed += [(o.fingerprint, o.resource, o.at, o.status) for o in history if since is None or o.at >= since]
    for fingerprint, resource, at, status in observed:
        key = (fingerprint, resource)
        if key not in seen or at >= seen[key][0]:
            seen[key] = (at, status)
    return {key: status for key, (_, status) in seen.items()}


def blast_radius(history: Sequence[Observation], alert: AlertFacts, window: timedelta) -> int:
    """Distinct resources (or, without resources, distinct alerts) firing in the group within the window: an alert
    counts only while its latest state is firing (one that resolved since is no longer part of the blast)."""
    recent = [o for o in history if alert.at - o.at <= window]
    states = latest_states((), recent, None)
    states[(alert.keys.fingerprint, alert.keys.resource)] = alert.status
    firing = [key for key, status in states.items() if status == "firing"]
    resources = {resource for _, resource in firing if resource}
    fingerprints = {fingerprint for fingerprint, _ in firing}
    return max(len(resources), len(fingerprints))


def closed_recently(history: Sequence[Observation], alert: AlertFacts, window: timedelta) -> Observation | None:
    """The resolution with which triage closed the group's incident within the window before this alert, if any
    (a re-fire then reopens that incident rather than opening another or being called noise)."""
    for o in reversed(history):
        if "closed" in o.rules and o.incident_id:
            return o if timedelta(0) <= alert.at - o.at <= window else None
    return None

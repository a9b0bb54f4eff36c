"""What the group's recent history says about an alert (pure): flapping changes, firing streaks, blast radius."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from services.triage.domain.facts import AlertFacts, Observation


def same_alert(o: Observation, alert: AlertFacts) -> bool:
    """Whether an observation is this very alert (same fingerprint and resource), not another of its group."""
    return o.fingerprint == alert.keys.fingerprint and o.resource == alert.keys.resource


def state_changes(history: Sequence[Observation], alert: AlertFacts, window: timedelta) -> int:
    """firing<->resolved changes of this alert (same fingerprint and resource) within the window, this one included."""
    statuses = [o.status for o in history if same_alert(o, alert) and alert.at - o.at <= window]
    statuses.append(alert.status)
    return sum(1 for a, b in itertools.pairwise(statuses) if a != b)


def firing_since(history: Sequence[Observation], alert: AlertFacts) -> datetime:
    """Start of this alert's current uninterrupted firing streak (its own time when it just started)."""
    start = alert.at
    for o in reversed([o for o in history if same_alert(o, alert)]):
        if o.status != "firing":
            break
        start = o.at
    return start


def blast_radius(history: Sequence[Observation], alert: AlertFacts, window: timedelta) -> int:
    """Distinct resources (or, without resources, distinct alerts) firing in the group within the window."""
    recent = [o for o in history if o.status == "firing" and alert.at - o.at <= window]
    resources = {o.resource for o in recent if o.resource}
    fingerprints = {o.fingerprint for o in recent}
    if alert.status == "firing":
        fingerprints.add(alert.keys.fingerprint)
        if alert.keys.resource:
            resources.add(alert.keys.resource)
    return max(len(resources), len(fingerprints))

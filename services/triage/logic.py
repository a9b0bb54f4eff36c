"""Triage decisions as pure functions of (alert, history, live incident, config, now).

`decide` applies the rules in a fixed order — hard blocks first (dedup, resolution), then the noise rules
(source noise hint, maintenance, known noise, flapping), then the holds (open-after-N, short-spike) — and
returns a `Decision`: real / noise / duplicate, a severity P0–P3, and the reasons (which rules fired).
Only an alert that no rule decides may take a soft hint (a model's verdict); a hint never overrides a rule.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from pagerpatch.settings import AlertMatch, MaintenanceWindow
from schemas.events import AlertReceivedPayload, Severity
from services.triage.fingerprint import AlertKeys, keys
from services.triage.fingerprint import fingerprint as fingerprint  # re-exported for callers
from services.triage.fingerprint import normalize_title as normalize_title
from services.triage.fingerprint import top_frames as top_frames
from services.triage.settings import TriageConfig

Classification = Literal["real", "noise", "duplicate"]

SEVERITY_WORDS: dict[str, Severity] = {
    "p0": Severity.P0, "sev0": Severity.P0, "sev-0": Severity.P0, "emergency": Severity.P0, "fatal": Severity.P0,
    "p1": Severity.P1, "sev1": Severity.P1, "sev-1": Severity.P1, "critical": Severity.P1, "high": Severity.P1,
    "error": Severity.P2, "p2": Severity.P2, "sev2": Severity.P2, "sev-2": Severity.P2, "major": Severity.P2,
    "medium": Severity.P2, "warning": Severity.P3, "warn": Severity.P3, "p3": Severity.P3, "sev3": Severity.P3,
    "low": Severity.P3, "minor": Severity.P3, "info": Severity.P3, "page": Severity.P1, "ticket": Severity.P3,
    "notice": Severity.P3,
}  # fmt: skip
# Severity of an alert whose source gave no usable severity, by what kind of alert it is.
KIND_SEVERITY: dict[str, Severity] = {
    "availability": Severity.P1, "error": Severity.P2, "latency": Severity.P2, "saturation": Severity.P3,
    "ci_failure": Severity.P3, "metric": Severity.P3,
}  # fmt: skip
# Kinds that say nothing about actionability ("metric" is ingest's answer when it cannot tell).
VAGUE_KINDS = frozenset({"metric", "other", "unknown"})
ORDER = [Severity.P0, Severity.P1, Severity.P2, Severity.P3]
# An incident a resolution may close: nothing downstream has produced a fix yet.
CLOSABLE_STATES = frozenset({"open", "diagnosed"})
UNDECIDED = "undecided: no stack trace, source severity or telling kind; the default (triage.undecided)"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ---------------------------------------------------------------- values


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
    classification: Classification
    severity: Severity
    reasons: tuple[str, ...]
    rules: tuple[str, ...]
    incident_id: str | None = None  # the live incident a duplicate or resolution belongs to
    close: bool = False  # a resolution closes that incident
    supersede: str | None = None  # a stale live incident to close before opening a new one
    undecided: bool = False  # no rule decided; the documented default (or a hint) did


# ---------------------------------------------------------------- severity


@dataclass(frozen=True)
class SeverityDecision:
    severity: Severity
    reasons: tuple[str, ...]


def severity(
    hint: str | None,
    tier: int | None,
    default: Severity,
    kind: str | None = None,
    blast_radius: int = 1,
    blast_threshold: int = 0,
) -> SeverityDecision:
    """Severity from the source's hint (else the alert kind, else the default), the service tier and blast radius."""
    reasons = []
    base = SEVERITY_WORDS.get((hint or "").strip().lower())
    if base is not None:
        reasons.append(f"severity: hint {hint!r} -> {base.value}")
    elif kind in KIND_SEVERITY:
        base = KIND_SEVERITY[kind]
        reasons.append(f"severity: no usable hint ({hint!r}); kind {kind!r} -> {base.value}")
    else:
        base = default
        reasons.append(f"severity: no usable hint ({hint!r}); default {default.value}")
    idx = ORDER.index(base)
    if tier == 0 and idx > 0:
        idx -= 1
        reasons.append("severity: tier-0 service, raised one level")
    elif tier == 3 and idx < len(ORDER) - 1:
        idx += 1
        reasons.append("severity: tier-3 service, lowered one level")
    if blast_threshold and blast_radius >= blast_threshold and idx > 0:
        idx -= 1
        reasons.append(f"severity: blast radius {blast_radius} resources, raised one level")
    return SeverityDecision(ORDER[idx], tuple(reasons))


# ---------------------------------------------------------------- matching


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


def _glob(pattern: str | None, value: str | None) -> bool:
    return pattern is None or (value is not None and fnmatch.fnmatchcase(value.lower(), pattern.lower()))


def matches(rule: AlertMatch, alert: AlertFacts) -> bool:
    """Whether `alert` is one the rule applies to (every field the rule gives must match)."""
    if not (_glob(rule.service, alert.service) and _glob(rule.source, alert.source) and _glob(rule.kind, alert.kind)):
        return False
    if rule.title is not None and not _regex(rule.title).search(alert.title):
        return False
    return all(_glob(v, alert.labels.get(k)) for k, v in rule.labels.items())


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_maintenance(window: MaintenanceWindow, at: datetime) -> bool:
    """Whether `at` falls in the window (one-off `starts_at`..`ends_at`, or the weekly recurrence)."""
    if window.starts_at is not None and window.ends_at is not None and window.starts_at <= at < window.ends_at:
        return True
    w = window.weekly
    if w is None:
        return False
    local = at.astimezone(ZoneInfo(w.timezone))
    minute, day = local.hour * 60 + local.minute, DAYS[local.weekday()]
    start, end = _minutes(w.start), _minutes(w.end)
    if start < end:
        return day in w.days and start <= minute < end
    yesterday = DAYS[(local.weekday() - 1) % 7]  # the window wraps past midnight
    return (day in w.days and minute >= start) or (yesterday in w.days and minute < end)


# ---------------------------------------------------------------- history helpers


def _same_alert(o: Observation, alert: AlertFacts) -> bool:
    return o.fingerprint == alert.keys.fingerprint and o.resource == alert.keys.resource


def state_changes(history: Sequence[Observation], alert: AlertFacts, window: timedelta) -> int:
    """firing<->resolved changes of this alert (same fingerprint and resource) within the window, this one included."""
    statuses = [o.status for o in history if _same_alert(o, alert) and alert.at - o.at <= window]
    statuses.append(alert.status)
    return sum(1 for a, b in itertools.pairwise(statuses) if a != b)


def firing_since(history: Sequence[Observation], alert: AlertFacts) -> datetime:
    """Start of this alert's current uninterrupted firing streak (its own time when it just started)."""
    start = alert.at
    for o in reversed([o for o in history if _same_alert(o, alert)]):
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


def _ago(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


# ---------------------------------------------------------------- the decision


def decide(
    alert: AlertFacts,
    history: Sequence[Observation],
    live: LiveIncident | None,
    config: TriageConfig,
    now: datetime,
    hint: Hint | None = None,
) -> Decision:
    """Classify one alert; `history` holds the group's earlier observations, oldest first."""
    rules = config.rules
    window = timedelta(seconds=rules.dedup_window_s)
    stale: str | None = None
    stale_reason: tuple[str, ...] = ()
    if live is not None and alert.status == "resolved":
        return _resolution(alert, history, live, config)
    if live is not None:
        if now - live.last_seen_at <= window:
            return Decision(
                "duplicate",
                live.severity,
                (f"dedup: duplicate of live incident {live.id} (seen {live.occurrences}x)",),
                ("dedup",),
                incident_id=live.id,
            )
        stale = live.id
        stale_reason = (
            f"dedup: live incident {live.id} last seen {_ago(now - live.last_seen_at)} ago, outside the "
            f"{_ago(window)} window; superseded",
        )

    radius = blast_radius(history, alert, timedelta(seconds=rules.blast_radius_window_s))
    sev = severity(
        alert.severity_hint, config.tier(alert.service), rules.default_severity, alert.kind, radius,
        rules.blast_radius_threshold,
    )  # fmt: skip

    def noise(rule: str, reason: str) -> Decision:
        return Decision("noise", sev.severity, (reason, *sev.reasons), (rule,))

    if alert.status == "resolved":
        return _orphan_resolution(alert, history, config, sev)
    if alert.noise_hint:
        return noise("noise_hint", f"noise_hint: the source marks this alert {alert.noise_hint!r}")
    for mw in rules.maintenance:
        if matches(mw, alert) and in_maintenance(mw, alert.at):
            return noise("maintenance", f"maintenance: window {mw.name!r} is in effect")
    for pattern in rules.known_noise:
        if matches(pattern, alert):
            return noise("known_noise", f"known_noise: matches pattern {pattern.name!r}")
    flap_window = timedelta(seconds=rules.flapping_window_s)
    changes = state_changes(history, alert, flap_window)
    if changes >= rules.flapping_min_changes:
        return noise("flapping", f"flapping: {changes} firing/resolved changes within {_ago(flap_window)}")

    fired: list[str] = list(stale_reason)
    names: list[str] = ["supersede"] if stale else []
    for rule in rules.open_after:
        if not matches(rule, alert):
            continue
        within = timedelta(seconds=rule.within_s)
        count = 1 + sum(1 for o in history if o.status == "firing" and alert.at - o.at <= within)
        if count < rule.count:
            return noise(
                "open_after", f"open_after: held, {count} of {rule.count} alerts within {_ago(within)} "
                f"(rule {rule.name!r})"
            )  # fmt: skip
        fired.append(f"open_after: {count} alerts within {_ago(within)} (rule {rule.name!r})")
        names.append("open_after")
        break
    if rules.spike_threshold_s > 0 and alert.kind in rules.spike_kinds:
        threshold = timedelta(seconds=rules.spike_threshold_s)
        lasted = alert.at - firing_since(history, alert)
        if lasted < threshold:
            return noise("spike_hold", f"spike_hold: held, firing for {_ago(lasted)} of the {_ago(threshold)} "
                         "short-spike threshold")  # fmt: skip
        fired.append(f"sustained: firing for {_ago(lasted)} (threshold {_ago(threshold)})")
        names.append("sustained")

    evidence = [
        what
        for what, present in (
            ("stack trace", alert.has_trace),
            ("source severity", (alert.severity_hint or "").strip().lower() in SEVERITY_WORDS),
            (f"kind {alert.kind!r}", alert.kind is not None and alert.kind not in VAGUE_KINDS),
            ("rule threshold met", bool(names) and names != ["supersede"]),
        )
        if present
    ]
    if evidence:
        why = "real: " + ", ".join(evidence)
        return Decision("real", sev.severity, (*fired, why, *sev.reasons), (*names, "real"), supersede=stale)
    # Undecided: no rule blocks it and nothing says it is real. A hint may decide; else the documented default.
    if hint is not None:
        hint_sev = hint.severity or sev.severity
        sev_reasons = (f"severity: model hint {hint_sev.value}",) if hint.severity else sev.reasons
        reasons = (*fired, f"llm_hint: {hint.classification}", *(f"llm_hint: {r}" for r in hint.reasons[:3]))
        return Decision(
            hint.classification, hint_sev, (*reasons, *sev_reasons), (*names, "llm_hint"),
            supersede=stale if hint.classification == "real" else None, undecided=True,
        )  # fmt: skip
    if rules.undecided == "suppress":
        return Decision(
            "noise", sev.severity,
            (f"{UNDECIDED} suppresses", *sev.reasons),
            ("undecided",), undecided=True,
        )  # fmt: skip
    return Decision(
        "real", sev.severity,
        (*fired, f"{UNDECIDED} opens", *sev.reasons),
        (*names, "undecided"), supersede=stale, undecided=True,
    )  # fmt: skip


def _resolution(
    alert: AlertFacts, history: Sequence[Observation], live: LiveIncident, config: TriageConfig
) -> Decision:
    """A resolved alert of a group with a live incident annotates it, and closes it when the whole group resolved."""
    since = live.opened_at
    last: dict[tuple[str, str | None], str] = {}
    for o in history:
        if since is None or o.at >= since:
            last[(o.fingerprint, o.resource)] = o.status
    last[(alert.keys.fingerprint, alert.keys.resource)] = "resolved"
    still = sum(1 for s in last.values() if s == "firing")
    base = f"resolution: of live incident {live.id}"
    rules = config.rules
    changes = state_changes(history, alert, timedelta(seconds=rules.flapping_window_s))
    if still:
        why = f"{base}; annotated, {still} alert(s) of the group still firing"
    elif not rules.close_on_resolve:
        why = f"{base}; annotated (triage.close_on_resolve is off)"
    elif live.state not in CLOSABLE_STATES:
        why = f"{base}; annotated, the incident is already {live.state}"
    else:
        return Decision(
            "duplicate", live.severity, (f"{base}; every alert of the group resolved: incident closed",),
            ("resolution", "closed"), incident_id=live.id, close=True,
        )  # fmt: skip
    extra = (f"flapping: {changes} firing/resolved changes",) if changes >= rules.flapping_min_changes else ()
    return Decision("duplicate", live.severity, (why, *extra), ("resolution",), incident_id=live.id)


def _orphan_resolution(
    alert: AlertFacts, history: Sequence[Observation], config: TriageConfig, sev: SeverityDecision
) -> Decision:
    """A resolved alert with no live incident: noise; a short spike when it resolved a held firing alert."""
    mine = [o for o in history if _same_alert(o, alert)]
    if mine and mine[-1].status == "firing" and "spike_hold" in mine[-1].rules:
        lasted = alert.at - firing_since(mine, replace(alert, status="firing"))
        threshold = timedelta(seconds=config.rules.spike_threshold_s)
        return Decision(
            "noise", sev.severity,
            (f"short_spike: resolved after {_ago(lasted)}, before the {_ago(threshold)} threshold", *sev.reasons),
            ("short_spike",),
        )  # fmt: skip
    return Decision("noise", sev.severity, ("resolution: no live incident to resolve", *sev.reasons), ("resolution",))

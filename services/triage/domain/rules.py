"""Triage decisions as pure functions of (alert, history, live incident, config, now).

`decide` applies the rules in a fixed order — hard blocks first (dedup, resolution), then the noise rules
(source noise hint, maintenance, known noise, flapping), then the holds (open-after-N, short-spike) — and
returns a `Decision`: real / noise / duplicate, a severity P0–P3, and the reasons (which rules fired).
Only an alert that no rule decides may take a soft hint (a model's verdict); a hint never overrides a rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pagerpatch.incidents.state import CLOSABLE
from services.triage.domain.facts import AlertFacts, Decision, Hint, LiveIncident, Observation
from services.triage.domain.history import (
    blast_radius,
    closed_recently,
    firing_since,
    latest_states,
    same_alert,
    state_changes,
)
from services.triage.domain.matching import in_maintenance, matches
from services.triage.domain.severity import ORDER, SEVERITY_WORDS, SeverityDecision, severity

if TYPE_CHECKING:  # the settings view imports this package for its identity rules
    from services.triage.settings import TriageConfig

# Kinds that say nothing about actionability ("metric" is ingest's answer when it cannot tell).
VAGUE_KINDS = frozenset({"metric", "other", "unknown"})
DATASOURCE_NODATA = "datasource_nodata"  # ingest's noise hint for Grafana's DatasourceNoData (triage.datasource_nodata)
UNDECIDED = "undecided: no stack trace, source severity or telling kind; the default (triage.undecided)"


def _ago(delta: timedelta) -> str:
    """A duration as the reasons show it (seconds, minutes or hours)."""
    s = int(delta.total_seconds())
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def decide(
    alert: AlertFacts,
    history: Sequence[Observation],
    live: LiveIncident | None,
    config: TriageConfig,
    now: datetime,
    hint: Hint | None = None,
    reopen: bool = True,
) -> Decision:
    """Classify one alert; `history` holds the group's earlier observations, oldest first. `reopen` False: the
    incident triage closed last may not be reopened (it moved on meanwhile), so a re-fire is judged afresh."""
    rules = config.rules
    window = timedelta(seconds=rules.dedup_window_s)
    stale: str | None = None
    stale_reason: tuple[str, ...] = ()
    if live is not None and alert.status == "resolved":
        return _resolution(alert, history, live, config)
    if live is not None:
        # Seen within the window, or a repeat of an alert that began firing while the incident was live (an
        # Alertmanager repeat keeps its start time: a group that never resolved extends its incident).
        if now - live.last_seen_at <= window or alert.at - live.last_seen_at <= window:
            return _duplicate(alert, live, config, now)
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
    if alert.noise_hint and not (alert.noise_hint == DATASOURCE_NODATA and rules.datasource_nodata == "real"):
        return noise("noise_hint", f"noise_hint: the source marks this alert {alert.noise_hint!r}")
    for mw in rules.maintenance:
        if matches(mw, alert) and in_maintenance(mw, alert.at):
            return noise("maintenance", f"maintenance: window {mw.name!r} is in effect")
    for pattern in rules.known_noise:
        if matches(pattern, alert):
            return noise("known_noise", f"known_noise: matches pattern {pattern.name!r}")
    flap_window = timedelta(seconds=rules.flapping_window_s)
    changes = state_changes(history, alert, flap_window)
    closed = closed_recently(history, alert, flap_window) if reopen and stale is None else None
    if closed is not None and closed.incident_id:
        flapping = f"; flapping: {changes} firing/resolved changes within {_ago(flap_window)}" if (
            changes >= rules.flapping_min_changes) else ""  # fmt: skip
        return Decision(
            "duplicate", sev.severity,
            (f"reopen: fired again {_ago(alert.at - closed.at)} after its incident {closed.incident_id} was closed "
             f"(within the {_ago(flap_window)} flapping window); reopened{flapping}", *sev.reasons),
            ("reopen",), incident_id=closed.incident_id, reopen=True,
        )  # fmt: skip
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
        # Measured up to now: a provider that repeats a firing alert keeps its start time (Alertmanager).
        lasted = max(now, alert.at) - firing_since(history, alert)
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


def _duplicate(alert: AlertFacts, live: LiveIncident, config: TriageConfig, now: datetime) -> Decision:
    """A firing alert the live incident absorbs; one that states a more urgent severity raises the incident's."""
    window = timedelta(seconds=config.rules.dedup_window_s)
    seen = f"seen {live.occurrences}x"
    if now - live.last_seen_at > window:
        seen += f", firing since {_ago(now - alert.at)} ago: extended"
    reasons: tuple[str, ...] = (f"dedup: duplicate of live incident {live.id} ({seen})",)
    stated = (alert.severity_hint or "").strip().lower() in SEVERITY_WORDS
    if stated:
        own = severity(alert.severity_hint, config.tier(alert.service), config.rules.default_severity, alert.kind)
        if ORDER.index(own.severity) < ORDER.index(live.severity):
            raised = (f"severity: raised from {live.severity.value} to {own.severity.value}: the source now says "
                      f"{alert.severity_hint!r}",)  # fmt: skip
            return Decision(
                "duplicate", own.severity, (*reasons, *raised), ("dedup", "raise_severity"), incident_id=live.id,
                raise_severity=True,
            )  # fmt: skip
    return Decision("duplicate", live.severity, reasons, ("dedup",), incident_id=live.id)


def _resolution(
    alert: AlertFacts, history: Sequence[Observation], live: LiveIncident, config: TriageConfig
) -> Decision:
    """A resolved alert of a group with a live incident annotates it, and closes it when the whole group resolved."""
    last = latest_states(live.members, history, live.opened_at)
    last[(alert.keys.fingerprint, alert.keys.resource)] = "resolved"
    still = sum(1 for s in last.values() if s == "firing")
    base = f"resolution: of live incident {live.id}"
    rules = config.rules
    changes = state_changes(history, alert, timedelta(seconds=rules.flapping_window_s))
    if still:
        why = f"{base}; annotated, {still} alert(s) of the group still firing"
    elif not rules.close_on_resolve:
        why = f"{base}; annotated (triage.close_on_resolve is off)"
    elif live.state not in CLOSABLE:
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
    mine = [o for o in history if same_alert(o, alert)]
    if mine and mine[-1].status == "firing" and "spike_hold" in mine[-1].rules:
        lasted = alert.at - firing_since(mine, replace(alert, status="firing"))
        threshold = timedelta(seconds=config.rules.spike_threshold_s)
        return Decision(
            "noise", sev.severity,
            (f"short_spike: resolved after {_ago(lasted)}, before the {_ago(threshold)} threshold", *sev.reasons),
            ("short_spike",),
        )  # fmt: skip
    return Decision("noise", sev.severity, ("resolution: no live incident to resolve", *sev.reasons), ("resolution",))

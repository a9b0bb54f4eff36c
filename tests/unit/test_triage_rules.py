"""The triage decision (pure): dedup, resolution, noise rules, holds, undecided defaults, hints."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pagerpatch.settings import MaintenanceWindow, ServiceEntry, TriageSettings
from schemas.events import AlertReceivedPayload, Severity
from services.triage.domain import (
    AlertFacts,
    Hint,
    LiveIncident,
    Member,
    Observation,
    blast_radius,
    decide,
    facts,
    in_maintenance,
    state_changes,
)
from services.triage.settings import TriageConfig

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)  # a Monday
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/shop/api.py", line 3, in checkout\n    x()\n'
    '  File "/app/shop/pricing.py", line 9, in quote\n    raise KeyError(code)\n'
    "KeyError: 'SUMMER24'\n"
)


def alert(at: float = 0, n: int = 0, **fields: Any) -> AlertFacts:
    payload: dict[str, Any] = {"source": "alertmanager", "service": "search", "title": "search 5xx high",
                               "kind": "availability", "severity_hint": "critical"}  # fmt: skip
    payload.update(fields)
    return facts(f"00000000-0000-0000-0000-{n:012d}", AlertReceivedPayload(**payload), T0 + timedelta(seconds=at))


def seen(
    a: AlertFacts, decision: str = "real", rules: tuple[str, ...] = (), incident: str | None = None
) -> Observation:
    return Observation(a.event_id, a.keys.fingerprint, a.keys.resource, a.status, a.at, decision, rules, incident)


def config(**rules: Any) -> TriageConfig:
    catalog = {"checkout": ServiceEntry(tier=0), "reports": ServiceEntry(tier=3)}
    return TriageConfig(rules=TriageSettings.model_validate(rules), catalog=catalog)


def live(last_seen: float = 0, state: str = "open", severity: Severity = Severity.P1) -> LiveIncident:
    return LiveIncident("inc-1", T0 + timedelta(seconds=last_seen), 3, severity, state, T0)


# ---------------------------------------------------------------- hard blocks


def test_live_incident_within_window_absorbs_the_alert_with_its_severity() -> None:
    d = decide(alert(60, severity_hint="info"), [], live(severity=Severity.P0), config(), T0 + timedelta(seconds=60))
    assert (d.classification, d.severity, d.incident_id, d.rules) == ("duplicate", Severity.P0, "inc-1", ("dedup",))


@pytest.mark.parametrize(
    ("ago_s", "duplicate"), [(0, True), (21600, True), (21601, False), (3 * 86400, False)]
)  # fmt: skip
def test_dedup_window_is_inclusive_and_a_stale_incident_is_superseded(ago_s: int, duplicate: bool) -> None:
    now = T0 + timedelta(seconds=ago_s)
    d = decide(alert(ago_s), [], live(0), config(), now)
    if duplicate:
        assert d.classification == "duplicate"
    else:
        assert (d.classification, d.supersede) == ("real", "inc-1")
        assert "outside the 6h window" in d.reasons[0]


def test_dedup_wins_over_noise_rules_and_never_asks_for_a_hint() -> None:
    mw = [{"name": "m", "starts_at": T0.isoformat(), "ends_at": (T0 + timedelta(hours=1)).isoformat()}]
    hint = Hint("noise", Severity.P3, ("looks fine",))
    d = decide(alert(10, noise_hint="insufficient_data"), [], live(), config(maintenance=mw), T0, hint)
    assert d.classification == "duplicate" and "llm_hint" not in d.rules


def test_resolution_closes_when_the_whole_group_resolved() -> None:
    d = decide(alert(60, status="resolved"), [seen(alert(0))], live(), config(), T0)
    assert (d.classification, d.close, d.incident_id) == ("duplicate", True, "inc-1")


def test_resolution_of_one_replica_only_annotates() -> None:
    history = [seen(alert(0, 1, resource="10.0.0.1:80")), seen(alert(5, 2, resource="10.0.0.2:80"))]
    d = decide(alert(60, status="resolved", resource="10.0.0.1:80"), history, live(), config(), T0)
    assert d.classification == "duplicate" and not d.close
    assert "1 alert(s) of the group still firing" in d.reasons[0]


@pytest.mark.parametrize(
    ("state", "close_on_resolve", "closes"),
    [("open", True, True), ("diagnosed", True, True), ("fix_validated", True, False), ("open", False, False)],
)
def test_resolution_never_closes_an_incident_with_fix_work_or_when_disabled(
    state: str, close_on_resolve: bool, closes: bool
) -> None:
    d = decide(alert(60, status="resolved"), [seen(alert(0))], live(state=state),
               config(close_on_resolve=close_on_resolve), T0)  # fmt: skip
    assert d.close == closes


def test_resolution_without_live_incident_is_noise() -> None:
    d = decide(alert(0, status="resolved"), [], None, config(), T0)
    assert (d.classification, d.rules) == ("noise", ("resolution",))


# ---------------------------------------------------------------- noise rules


def test_source_noise_hint_is_noise() -> None:
    d = decide(alert(noise_hint="insufficient_data"), [], None, config(), T0)
    assert d.classification == "noise" and d.rules == ("noise_hint",)
    assert "insufficient_data" in d.reasons[0]


def test_maintenance_window_scoped_to_a_service() -> None:
    mw = [{"name": "upgrade", "service": "search", "starts_at": "2024-06-03T11:00:00Z",
           "ends_at": "2024-06-03T13:00:00Z"}]  # fmt: skip
    assert decide(alert(), [], None, config(maintenance=mw), T0).rules == ("maintenance",)
    assert decide(alert(service="payments"), [], None, config(maintenance=mw), T0).classification == "real"
    assert decide(alert(3 * 3600), [], None, config(maintenance=mw), T0).classification == "real"


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        ("2024-06-02T23:30:00+00:00", True),  # Sunday night, in the window
        ("2024-06-03T01:59:00+00:00", True),  # Monday early: the window wraps past midnight
        ("2024-06-03T02:00:00+00:00", False),
        ("2024-06-01T23:30:00+00:00", False),  # Saturday
        ("2024-06-02T21:30:00+00:00", True),  # 23:30 in Berlin (UTC+2) when the timezone is Europe/Berlin
    ],
)
def test_weekly_window_wraps_midnight_and_honours_timezones(at: str, inside: bool) -> None:
    tz = "Europe/Berlin" if at.startswith("2024-06-02T21") else "UTC"
    mw = MaintenanceWindow.model_validate(
        {"name": "w", "weekly": {"days": ["sun"], "start": "23:00", "end": "02:00", "timezone": tz}}
    )
    assert in_maintenance(mw, datetime.fromisoformat(at)) == inside


def test_known_noise_pattern_by_label_glob_and_title_regex() -> None:
    patterns = [{"name": "dev", "labels": {"env": "dev*"}}, {"name": "watchdog", "title": "^watchdog$"}]
    cfg = config(known_noise=patterns)
    assert decide(alert(labels={"env": "dev2"}), [], None, cfg, T0).rules == ("known_noise",)
    assert decide(alert(title="Watchdog"), [], None, cfg, T0).rules == ("known_noise",)
    assert decide(alert(labels={"env": "prod"}), [], None, cfg, T0).classification == "real"


def test_a_refire_soon_after_triage_closed_the_incident_reopens_it() -> None:
    fired, resolved = alert(0, 1), alert(120, 2, status="resolved")
    history = [seen(fired, "real", ("real",), "inc-1"), seen(resolved, "duplicate", ("resolution", "closed"), "inc-1")]
    d = decide(alert(240, 3), history, None, config(), T0 + timedelta(seconds=240))
    assert (d.classification, d.rules, d.incident_id, d.reopen) == ("duplicate", ("reopen",), "inc-1", True)
    assert "fired again 2m after its incident inc-1 was closed" in d.reasons[0]
    later = decide(alert(900, 3), history, None, config(), T0)  # past the 10-minute window: a recurrence
    assert (later.classification, later.reopen) == ("real", False)
    refused = decide(alert(240, 3), history, None, config(), T0, reopen=False)  # the store could not reopen it
    assert refused.classification == "real"


def test_flapping_means_many_changes_not_one_refire() -> None:
    statuses = ["firing", "resolved", "firing", "resolved"]
    history = [seen(alert(60 * i, i, status=st), "noise") for i, st in enumerate(statuses)]
    assert decide(alert(240, 9), history, None, config(), T0).rules == ("flapping",)  # 4 changes in 10 minutes
    assert decide(alert(240, 9), history[1:], None, config(), T0).classification == "real"  # 3 changes
    assert decide(alert(240, 9), history, None, config(flapping_min_changes=5), T0).classification == "real"


def test_a_change_counts_when_it_happens_in_the_window_however_long_the_state_before_lasted() -> None:
    # Fired for 50 minutes, resolved, fired again: two changes inside the window (the old rule saw one).
    history = [seen(alert(0, 1)), seen(alert(3000, 2, status="resolved"), "duplicate")]
    assert state_changes(history, alert(3100, 3), timedelta(minutes=10)) == 2
    assert state_changes(history, alert(3700, 3), timedelta(minutes=10)) == 1


def test_flapping_counts_per_resource_not_across_replicas() -> None:
    a, b = {"resource": "pod-a-1x2y3"}, {"resource": "pod-b-9z8y7"}
    history = [seen(alert(0, 1, **a)), seen(alert(10, 2, status="resolved", **a))]
    assert state_changes(history, alert(20, 3, **b), timedelta(minutes=10)) == 0
    assert state_changes(history, alert(20, 3, **a), timedelta(minutes=10)) == 2


# ---------------------------------------------------------------- holds


def test_open_after_n_within_t_holds_then_opens_with_blast_radius() -> None:
    rule = [{"name": "r", "service": "search", "count": 3, "within_s": 300}]
    cfg = config(open_after=rule)
    first, second = alert(0, 1, resource="h1"), alert(60, 2, resource="h2")
    assert decide(first, [], None, cfg, T0).rules == ("open_after",)
    assert "2 of 3" in decide(second, [seen(first, "noise")], None, cfg, T0).reasons[0]
    third = decide(alert(120, 3, resource="h3"), [seen(first, "noise"), seen(second, "noise")], None, cfg, T0)
    assert third.classification == "real" and third.severity == Severity.P0  # critical P1, 3 resources: P0
    assert any("blast radius 3" in r for r in third.reasons)


def test_short_spike_is_held_then_sustained_opens_and_a_quick_resolve_is_a_short_spike() -> None:
    cfg = config(spike_threshold_s=180)
    first = alert(0, 1, kind="latency")
    held = decide(first, [], None, cfg, T0)
    assert held.rules == ("spike_hold",)
    history = [seen(first, "noise", held.rules)]
    resolved = decide(alert(60, 2, kind="latency", status="resolved"), history, None, cfg, T0)
    assert resolved.rules == ("short_spike",) and "resolved after 60s" in resolved.reasons[0]
    sustained = decide(alert(200, 3, kind="latency"), history, None, cfg, T0)
    assert sustained.classification == "real" and "sustained" in sustained.rules


def test_spike_hold_only_applies_to_configured_kinds() -> None:
    assert decide(alert(kind="error"), [], None, config(spike_threshold_s=180), T0).classification == "real"


# ---------------------------------------------------------------- undecided and hints


def vague(**fields: Any) -> AlertFacts:
    return alert(kind="metric", severity_hint=None, title="orders processed low", **fields)


def test_undecided_follows_the_documented_default() -> None:
    opened = decide(vague(), [], None, config(), T0)
    assert (opened.classification, opened.undecided, opened.rules) == ("real", True, ("undecided",))
    suppressed = decide(vague(), [], None, config(undecided="suppress"), T0)
    assert (suppressed.classification, suppressed.undecided) == ("noise", True)


def test_a_hint_decides_only_undecided_alerts() -> None:
    hint = Hint("noise", Severity.P3, ("a batch metric dipping at night is expected",))
    d = decide(vague(), [], None, config(), T0, hint)
    assert (d.classification, d.rules) == ("noise", ("llm_hint",))
    assert any("batch metric" in r for r in d.reasons)
    clear = decide(alert(stack_trace=TRACE), [], None, config(), T0, hint)  # evidence: the hint is ignored
    assert clear.classification == "real" and "llm_hint" not in clear.rules


def test_a_hint_never_overrides_a_noise_rule() -> None:
    hint = Hint("real", Severity.P0)
    d = decide(vague(noise_hint="insufficient_data"), [], None, config(), T0, hint)
    assert d.classification == "noise" and d.rules == ("noise_hint",)


def test_every_decision_names_its_rules_and_reasons() -> None:
    for d in (
        decide(alert(), [], None, config(), T0),
        decide(alert(noise_hint="x"), [], None, config(), T0),
        decide(alert(), [], live(), config(), T0),
        decide(vague(), [], None, config(), T0),
    ):
        assert d.rules and d.reasons and all(len(r) <= 500 for r in d.reasons)


# ---------------------------------------------------------------- members, repeats, severity raises (issue 17)


def test_an_incident_closes_only_when_every_member_resolved_even_those_outside_the_history() -> None:
    pods = [alert(0, i, resource=f"shop/checkout-7f9c8d6b5-{i:05d}/api") for i in range(3)]
    members = tuple(Member(p.keys.fingerprint, p.keys.resource, "firing", p.at) for p in pods)
    still = LiveIncident("inc-1", T0, 3, Severity.P3, "open", T0, members)
    first = decide(alert(7200, 9, status="resolved", resource=pods[0].keys.resource), [], still, config(), T0)
    assert not first.close and "2 alert(s) of the group still firing" in first.reasons[0]
    done = LiveIncident("inc-1", T0, 3, Severity.P3, "open", T0,
                        tuple(replace(m, status="resolved") for m in members[:2]) + members[2:])  # fmt: skip
    last = decide(alert(7300, 9, status="resolved", resource=pods[2].keys.resource), [], done, config(), T0)
    assert last.close


def test_a_repeat_of_an_alert_firing_since_the_incident_was_live_extends_it_past_the_window() -> None:
    repeat = alert(0, 5)  # an Alertmanager repeat keeps its start time
    twelve_hours = T0 + timedelta(hours=12)
    d = decide(repeat, [], live(0), config(), twelve_hours)
    assert (d.classification, d.incident_id) == ("duplicate", "inc-1") and "extended" in d.reasons[0]
    fresh = decide(alert(12 * 3600, 6), [], live(0), config(), twelve_hours)  # a new occurrence: superseded
    assert (fresh.classification, fresh.supersede) == ("real", "inc-1")


@pytest.mark.parametrize(
    ("hint", "raised", "severity"),
    [("P1", False, Severity.P1), ("critical", False, Severity.P1), ("P0", True, Severity.P0),
     ("P3", False, Severity.P1), (None, False, Severity.P1)],
)  # fmt: skip
def test_a_duplicate_stating_a_more_urgent_severity_raises_the_incident(
    hint: str | None, raised: bool, severity: Severity
) -> None:
    d = decide(alert(60, severity_hint=hint), [], live(severity=Severity.P1), config(), T0 + timedelta(seconds=60))
    assert (d.classification, d.raise_severity, d.severity) == ("duplicate", raised, severity)


@pytest.mark.parametrize(("policy", "classification"), [("noise", "noise"), ("real", "real")])
def test_datasource_nodata_follows_its_policy(policy: str, classification: str) -> None:
    d = decide(alert(noise_hint="datasource_nodata"), [], None, config(datasource_nodata=policy), T0)
    assert d.classification == classification
    other = decide(alert(noise_hint="insufficient_data"), [], None, config(datasource_nodata=policy), T0)
    assert other.classification == "noise"  # the policy is for Grafana's NoData only


def test_blast_radius_counts_only_members_still_firing() -> None:
    a, b = alert(0, 1, resource="h1"), alert(0, 2, resource="h2")
    history = [seen(a), seen(b), seen(alert(60, 3, status="resolved", resource="h1"), "duplicate"),
               seen(alert(60, 4, status="resolved", resource="h2"), "duplicate")]  # fmt: skip
    third = alert(300, 5, resource="h3")
    assert blast_radius(history, third, timedelta(minutes=15)) == 1
    assert blast_radius(history[:2], third, timedelta(minutes=15)) == 3


def test_a_repeat_keeping_its_start_time_is_held_until_it_has_fired_long_enough() -> None:
    cfg = config(spike_threshold_s=180)
    start = alert(0, 1, kind="latency")
    history = [seen(start, "noise", ("spike_hold",))]
    early = decide(alert(0, 2, kind="latency"), history, None, cfg, T0 + timedelta(seconds=60))
    late = decide(alert(0, 3, kind="latency"), history, None, cfg, T0 + timedelta(seconds=240))
    assert early.rules == ("spike_hold",) and "sustained" in late.rules

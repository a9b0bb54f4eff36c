"""The console's pure rules: access by token, host and form checks, subject filters, ages, money, diffs, cost
aggregation, chart geometry, consumer status; and its settings' refusal to start exposed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from pagerpatch.settings.console import ConsoleSettings, is_loopback
from services.console import domain
from services.console.domain import Access, ConsumerLag, CostRow, IncidentFilter

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def cfg(**kw: object) -> ConsoleSettings:
    return ConsoleSettings(**kw)  # type: ignore[arg-type]


def test_a_console_off_loopback_refuses_to_start_without_a_token() -> None:
    assert cfg().startup_problem() is None  # 127.0.0.1 by default, no token needed
    assert "PAGERPATCH_CONSOLE_TOKEN" in (cfg(host="0.0.0.0").startup_problem() or "")
    assert cfg(host="0.0.0.0", token="t").startup_problem() is None
    assert "dana" in (cfg(approvers={"dana": ""}).startup_problem() or "")  # an approver without a secret
    assert [is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "localhost", "0.0.0.0", "10.0.0.1", "::")] == [
        True, True, True, True, False, False, False]  # fmt: skip


def test_tokens_grant_looking_or_deciding_by_name() -> None:
    locked = cfg(token="view", approvers={"dana": "d-secret", "lee": "l-secret"})
    assert domain.resolve_access(locked, None) == domain.DENIED
    assert domain.resolve_access(locked, "nope") == domain.DENIED
    assert domain.resolve_access(locked, "view") == Access(allowed=True)
    assert domain.resolve_access(locked, "l-secret", via_header=True) == Access(True, "lee", via_header=True)
    open_ = cfg(approvers={"dana": "d-secret"})
    assert domain.resolve_access(open_, None) == Access(allowed=True)  # loopback without a token: looking is open
    assert domain.resolve_access(open_, "d-secret").approver == "dana"
    # Signing in needs a real token even where looking does not (a typo must not look like success).
    assert domain.signed_in(open_, "typo") is None
    assert domain.signed_in(open_, "d-secret") == Access(True, "dana")
    assert domain.signed_in(locked, "view") == Access(True)


def test_an_open_console_answers_loopback_host_names_only() -> None:
    open_ = cfg()
    for host in ("127.0.0.1:8081", "localhost:8081", "[::1]:8081", "localhost"):
        assert domain.host_allowed(open_, host), host
    for host in ("evil.example:8081", "evil.example", "10.0.0.5:8081", ""):
        assert not domain.host_allowed(open_, host), host
    assert domain.host_allowed(cfg(token="t"), "console.internal:443")  # a token decides instead


def test_a_cookie_decision_needs_the_approvers_form_token() -> None:
    c = cfg(approvers={"dana": "d-secret", "lee": "l-secret"})
    dana = Access(True, "dana")
    assert domain.csrf_ok(c, dana, domain.csrf_token("d-secret"))
    assert not domain.csrf_ok(c, dana, domain.csrf_token("l-secret"))  # another approver's form
    assert not domain.csrf_ok(c, dana, "")
    assert not domain.csrf_ok(c, Access(True), domain.csrf_token("d-secret"))  # not an approver
    assert domain.csrf_ok(c, Access(True, "dana", via_header=True), "")  # a script's header is no cookie


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, "pagerpatch.>"), ("", "pagerpatch.>"), ("incident.>", "pagerpatch.incident.>"),
     ("pagerpatch.fix.*", "pagerpatch.fix.*"), ("pagerpatch.alert.received", "pagerpatch.alert.received"),
     ("fix.>.x", None), ("pagerpatch..x", None), ("fix bad", None), ("$JS.API.>", None)],
)  # fmt: skip
def test_subject_filters_stay_under_pagerpatch(raw: str | None, expected: str | None) -> None:
    assert domain.subject_filter(raw) == expected


def test_incident_filters_ignore_blank_and_malformed_values() -> None:
    f = IncidentFilter.from_query({"state": "open", "service": " ", "team": "<script>"})
    assert f == IncidentFilter(state="open")
    assert IncidentFilter(state="open", team="web").query() == "state=open&team=web"


def test_ages_and_money_read_at_a_glance() -> None:
    ages = [domain.age(NOW - timedelta(seconds=s), NOW) for s in (0, 42, 420, 3600, 3900, 49 * 3600, 72 * 3600)]
    assert ages == ["0s", "42s", "7m", "1h", "1h 5m", "2d 1h", "3d"]
    assert domain.age(NOW + timedelta(seconds=5), NOW) == "0s"  # a clock skew is not a negative age
    assert [domain.money(v) for v in (0, Decimal("0.0123"), 1.5, Decimal("1234.5"))] == [
        "-", "$0.0123", "$1.50", "$1,234.50"]  # fmt: skip


PATCH = """diff --git a/a.py b/a.py
--- a/a.py
+++ b/a.py
@@ -1,3 +1,3 @@ def f():
 x = 1
-y = 2
+y = 3
 z = 4
diff --git a/new.py b/new.py
new file mode 100644
--- /dev/null
+++ b/new.py
@@ -0,0 +1 @@
+print("hi")
"""


def test_a_patch_renders_as_files_of_numbered_lines() -> None:
    files = domain.render_diff(PATCH)
    assert [(f.path, f.status, f.added, f.removed) for f in files] == [("a.py", "modified", 1, 1),
                                                                       ("new.py", "added", 1, 0)]  # fmt: skip
    lines = files[0].lines
    assert lines[0] == domain.DiffLine("hunk", "@@ -1,3 +1,3 @@ def f():")
    assert [(ln.kind, ln.text, ln.old, ln.new) for ln in lines[1:]] == [
        ("ctx", "x = 1", 1, 1), ("del", "y = 2", 2, None), ("add", "y = 3", None, 2),
        ("ctx", "z = 4", 3, 3)]  # fmt: skip
    assert domain.render_diff("  \n") == []
    odd = domain.render_diff("@@ broken\n+added\n-removed\nplain\n")  # not a diff unidiff parses: shown as is
    assert [(f.status, f.added, f.removed) for f in odd] == [("unparsed", 1, 1)]
    assert [ln.kind for ln in odd[0].lines] == ["hunk", "add", "del", "ctx"]


def row(day: int, agent: str, team: str, cost: str, calls: int = 1) -> CostRow:
    return CostRow(date(2026, 3, day), agent, team, calls, 100 * calls, 10 * calls, Decimal(cost))


def test_costs_are_totalled_per_agent_team_and_day() -> None:
    ledger = domain.aggregate_costs([row(2, "diagnosis", "web", "0.50", 2), row(1, "diagnosis", "pay", "0.25"),
                                     row(1, "triage", "pay", "1.00", 3)])  # fmt: skip
    assert [(t.key, t.calls, t.cost_usd) for t in ledger.by_agent] == [("triage", 3, Decimal("1.00")),
                                                                       ("diagnosis", 3, Decimal("0.75"))]  # fmt: skip
    assert [(t.key, t.cost_usd) for t in ledger.by_team] == [("pay", Decimal("1.25")), ("web", Decimal("0.50"))]
    assert [(t.key, t.cost_usd) for t in ledger.by_day] == [("2026-03-01", Decimal("1.25")),
                                                            ("2026-03-02", Decimal("0.50"))]  # fmt: skip
    assert (ledger.total.calls, ledger.total.input_tokens, ledger.total.cost_usd) == (6, 600, Decimal("1.75"))
    assert domain.aggregate_costs([]).total.calls == 0


def test_the_chart_has_a_point_for_every_day_of_the_period() -> None:
    ledger = domain.aggregate_costs([row(2, "a", "t", "0.50"), row(4, "a", "t", "0.25")])
    points = domain.daily_points(ledger.by_day, date(2026, 3, 4), 5)
    assert points == [("2026-02-28", 0), ("2026-03-01", 0), ("2026-03-02", Decimal("0.50")), ("2026-03-03", 0),
                      ("2026-03-04", Decimal("0.25"))]  # fmt: skip


def test_chart_bars_scale_to_the_largest_day() -> None:
    bars = domain.bars([("a", Decimal(2)), ("b", Decimal(1)), ("c", Decimal(0))], width=300, height=100)
    assert [b.height for b in bars] == [100.0, 50.0, 1.0]  # a zero day is a hairline, not nothing
    assert [b.y for b in bars] == [0.0, 50.0, 99.0]
    assert bars[1].x > bars[0].x + bars[0].width  # a gap between bars
    assert domain.bars([]) == []


def test_consumer_status_says_when_work_waits_with_nobody_reading() -> None:
    def lag(**kw: object) -> ConsumerLag:
        return ConsumerLag("triage", "triage", "pagerpatch.alert.received", **kw)  # type: ignore[arg-type]

    assert domain.lag_status(lag(found=False)).startswith("missing")
    assert domain.lag_status(lag(found=True, num_pending=3)) == "no reader"
    assert domain.lag_status(lag(found=True, num_pending=500, num_waiting=1)) == "behind"
    assert domain.lag_status(lag(found=True, num_ack_pending=2, num_waiting=1)) == "busy"
    assert domain.lag_status(lag(found=True, num_waiting=1)) == "ok"

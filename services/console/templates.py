"""Server-rendered HTML of the console's pages (the incident page is in `incident_page.py`). Every value goes through
`esc`; the only script is `SCRIPT`, served from /static/console.js (the pages allow no inline script)."""

from __future__ import annotations

from html import escape
from string import Template
from typing import Any

from services.console import domain
from services.console.domain import Access
from services.console.ports import IncidentRow
from services.console.usecase import CostsView, HealthView, IncidentsView


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(value: Any) -> str:
    return esc(str(value)[:19].replace("T", " ")) if value else "-"


LAYOUT = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · pagerpatch console</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.4em;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header a.on{color:#fff;font-weight:600}
header .who{margin-left:auto;color:#aab}main{padding:1em 1.4em}
table{border-collapse:collapse;background:#fff;width:100%;margin:.4em 0 1.2em}
th,td{border-bottom:1px solid #e3e6ea;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.mono{font-family:ui-monospace,monospace;font-size:12.5px}
.sev-P0,.sev-P1{color:#b00020;font-weight:600}.state{font-weight:600}.muted{color:#6b7280}
.diff{background:#fff;border:1px solid #e3e6ea;margin:.5em 0}.diff h4{margin:0;padding:.3em .6em;background:#eef1f5}
.diff td{border:0;padding:0 .5em;white-space:pre-wrap}.diff td.ln{color:#8a94a6;text-align:right;width:3.5em}
.add{background:#e6ffec}.del{background:#ffebe9}.hunk{background:#f1f8ff;color:#57606a}
.notice{background:#fff8c5;border:1px solid #e5d36b;padding:.5em .8em}.problem{background:#ffebe9;padding:.5em .8em}
form.inline{display:inline}button{padding:.3em .9em;margin-right:.4em}
.approve{background:#1f883d;color:#fff;border:0}.reject{background:#cf222e;color:#fff;border:0}
section{margin-bottom:1.4em}h2{font-size:1.15em;margin:.8em 0 .3em}
</style></head>
<body data-page="$page" data-stream="$stream" data-rows="$rows" data-incident="$incident">
<header><strong>pagerpatch</strong>$nav<span class="who">$who</span></header>
<main>$notice$body</main>
<script src="/static/console.js"></script>
</body></html>""")

PAGES = (("incidents", "/", "Incidents"), ("events", "/events", "Live events"), ("health", "/health", "Health"),
         ("costs", "/costs", "Costs"))  # fmt: skip


def page(title: str, body: str, access: Access, *, active: str = "", notice: str = "", stream: str = "",
         rows: str = "", incident: str = "") -> str:  # fmt: skip
    nav = "".join(f'<a href="{href}"{" class=on" if key == active else ""}>{esc(label)}</a>'
                  for key, href, label in PAGES)  # fmt: skip
    who = (f"approver {esc(access.approver)} · <a href=/logout>sign out</a>" if access.approver
           else '<a href="/login">sign in as an approver</a>')  # fmt: skip
    return LAYOUT.substitute(
        title=esc(title), page=esc(active), stream=esc(stream), rows=esc(rows), incident=esc(incident), nav=nav,
        who=who,
        notice=f'<p class="notice" id="notice">{esc(notice)}</p>' if notice else "", body=body,
    )  # fmt: skip


def login(next_path: str, problem: str = "") -> str:
    body = f"""<h1>pagerpatch console</h1>{f'<p class="problem">{esc(problem)}</p>' if problem else ""}
<form method="post" action="/login"><input type="hidden" name="next" value="{esc(next_path)}">
<label>Token <input type="password" name="token" autofocus autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>
<p class="muted">PAGERPATCH_CONSOLE_TOKEN to look; an approver's own token (console.approvers) to decide.</p>"""
    return page("sign in", body, domain.DENIED)


# ------------------------------------------------------------------ incidents


def _select(name: str, options: list[str], current: str | None) -> str:
    opts = "".join(f'<option value="{esc(o)}"{" selected" if o == current else ""}>{esc(o)}</option>'
                   for o in options)  # fmt: skip
    return f'<label>{name} <select name="{name}"><option value="">any</option>{opts}</select></label> '


def incident_rows(rows: list[IncidentRow], view: IncidentsView) -> str:
    if not rows:
        return '<tr><td colspan="9" class="muted">no incidents match</td></tr>'
    out = []
    for r in rows:
        pr = f'<a href="{esc(r.pr_url)}">pull request</a>' if r.pr_url else "-"
        out.append(
            f'<tr data-id="{r.id}"><td><a href="/incidents/{r.id}" class="mono">{str(r.id)[:8]}</a> {esc(r.title)}</td>'
            f'<td class="state">{esc(r.state)}</td><td class="sev-{esc(r.severity)}">{esc(r.severity)}</td>'
            f"<td>{esc(r.service)}</td><td>{esc(r.team or '-')}</td>"
            f'<td title="{when(r.opened_at)}">{domain.age(r.opened_at, view.now)}</td>'
            f"<td>{esc(r.strategy or '-')}</td><td>{pr}</td><td class=num>{domain.money(r.cost_usd)}</td></tr>"
        )
    return "".join(out)


def incidents(view: IncidentsView, access: Access) -> str:
    f = view.filter
    form = (
        '<form method="get" action="/" id="filters">'
        + _select("state", view.choices.get("state", []), f.state)
        + _select("service", view.choices.get("service", []), f.service)
        + _select("team", view.choices.get("team", []), f.team)
        + '<button type="submit">filter</button></form>'
    )
    body = f"""<h1>Incidents</h1>{form}
<table id="incidents"><thead><tr><th>incident</th><th>state</th><th>sev</th><th>service</th><th>team</th>
<th>age</th><th>strategy</th><th>PR</th><th>cost</th></tr></thead>
<tbody id="incident-rows">{incident_rows(view.rows, view)}</tbody></table>
<p class="muted" id="live-status">live: the list refreshes when an event arrives</p>"""  # fmt: skip
    query = f.query()
    return page("incidents", body, access, active="incidents", stream="pagerpatch.>",
                rows="/incidents/rows" + (f"?{query}" if query else ""))  # fmt: skip


# ------------------------------------------------------------------ live events


def events(subject: str, access: Access, problem: str = "") -> str:
    body = f"""<h1>Live events</h1>{f'<p class="problem">{esc(problem)}</p>' if problem else ""}
<form method="get" action="/events"><label>subject <input name="subject" value="{esc(subject)}" size="40"></label>
<button type="submit">follow</button> <span class="muted">e.g. pagerpatch.incident.&gt; or fix.*</span></form>
<p class="muted" id="live-status">connecting…</p>
<table id="events"><thead><tr><th>seq</th><th>when</th><th>type</th><th>incident</th><th>source</th>
<th>summary</th></tr></thead><tbody id="event-rows"></tbody></table>"""
    return page("live events", body, access, active="events", stream=subject)


# ------------------------------------------------------------------ health


def _breakers(view: HealthView) -> str:
    """Breaker states as each service's /metrics reports them (they live in the processes, never in the store)."""
    if not view.breaker_endpoints:
        return ('<section><h2>Breakers</h2><p id="breakers" class="muted">No service metrics endpoint is known: '
                "breakers live in each service process and are read from its /metrics. Set "
                "<code>PAGERPATCH_METRICS__PORTS</code> (under <code>pagerpatch up</code>) or "
                "<code>PAGERPATCH_CONSOLE_METRICS_URLS</code>.</p></section>")  # fmt: skip
    rows = "".join(
        f'<tr><td>{esc(b.service)}</td><td colspan="2" class="problem">{esc(b.problem)}</td></tr>' if b.problem
        else f"<tr><td>{esc(b.service)}</td><td>{esc(b.dependency)}</td><td class=state>{esc(b.state)}</td></tr>"
        for b in view.breakers
    ) or '<tr><td colspan="3" class="muted">no breaker has been used yet</td></tr>'  # fmt: skip
    opened = sum(1 for b in view.breakers if b.state == "open")
    read = ", ".join(sorted(view.breaker_endpoints))
    return (f'<section><h2>Breakers: {opened} open</h2><table id="breakers"><thead><tr><th>service</th>'
            f"<th>dependency</th><th>state</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<p class=muted>read from the /metrics of {esc(read)}</p></section>")  # fmt: skip


def health(view: HealthView, access: Access) -> str:
    lag = "".join(
        f"<tr><td>{esc(c.durable)}</td><td>{esc(c.service)}</td><td class=mono>{esc(c.subject)}</td>"
        f"<td class=num>{c.num_pending}</td><td class=num>{c.num_ack_pending}</td>"
        f"<td class=num>{c.num_redelivered}</td>"
        f"<td class=num>{c.num_waiting}</td><td>{when(c.last_active)}</td><td class=state>{esc(status)}</td></tr>"
        for c, status in view.consumers
    )
    bus = f'<p class="problem">the bus did not answer: {esc(view.bus_error)}</p>' if view.bus_error else ""
    stages = (
        "".join(
            f"<tr><td>{esc(s.stage)}</td><td>{when(s.last_started)}</td><td>{when(s.last_finished)}</td>"
            f"<td class=num>{s.in_flight}</td>"
            f"<td>{domain.age(s.oldest_in_flight, view.now) if s.oldest_in_flight else '-'}</td>"
            f"<td class=num>{s.dead}</td></tr>"
            for s in view.stages
        )
        or '<tr><td colspan="6" class="muted">no checkpoint yet</td></tr>'
    )
    dead = "".join(f"<tr><td>{esc(d.consumer)}</td><td class=num>{d.total}</td><td class=num>{d.waiting}</td></tr>"
                   for d in view.dead_letters) or '<tr><td colspan="3" class="muted">none</td></tr>'  # fmt: skip
    up = view.up
    up_line = ("no <code>pagerpatch up</code> runs on this state folder (services may run elsewhere: see the "
               "consumers' readers)"
               if up is None else f"pagerpatch up: pid {up.pid}; ingest {esc(up.ingest_url)} "
               f"{'ready' if up.ingest_ready else 'NOT ready'}")  # fmt: skip
    body = f"""<h1>Health</h1>
<section><h2>Consumers (JetStream)</h2>{bus}<table id="consumers"><thead><tr><th>durable</th><th>service</th>
<th>subject</th><th>pending</th><th>ack pending</th><th>redelivered</th><th>readers waiting</th><th>last delivery</th>
<th>status</th></tr></thead><tbody>{lag}</tbody></table>
<p class="muted">pending: in the stream, not yet delivered (the lag); ack pending: being handled; readers waiting:
pull requests open now, i.e. live service instances asking for work.</p></section>
<section><h2>Dead letters: {view.dead_waiting} waiting</h2><table id="dead-letters"><thead><tr><th>consumer</th>
<th>total</th><th>not redriven</th></tr></thead><tbody>{dead}</tbody></table>
<p class="muted"><code>pagerpatch dlq list</code> / <code>dlq redrive</code>.</p></section>
<section><h2>Service heartbeats</h2><p id="up">{up_line}</p><table id="stages"><thead><tr><th>stage</th>
<th>last started</th><th>last finished</th><th>in flight</th><th>oldest in flight</th><th>dead</th></tr></thead>
<tbody>{stages}</tbody></table>
<p class="muted">A stage's heartbeat is its checkpoints (work started and finished) plus its consumers' waiting
readers above; work in flight for long usually waits out a dependency in place.</p></section>
{_breakers(view)}"""
    return page("health", body, access, active="health")


# ------------------------------------------------------------------ costs


def _totals(title: str, ident: str, totals: list[domain.CostTotal]) -> str:
    rows = (
        "".join(
            f"<tr><td>{esc(t.key)}</td><td class=num>{t.calls}</td><td class=num>{t.input_tokens:,}</td>"
            f"<td class=num>{t.output_tokens:,}</td><td class=num>{domain.money(t.cost_usd)}</td></tr>"
            for t in totals
        )
        or '<tr><td colspan="5" class="muted">no model calls</td></tr>'
    )
    return (f'<section><h2>{esc(title)}</h2><table id="{ident}"><thead><tr><th>{esc(title.split()[-1])}</th>'
            f"<th>calls</th><th>input tokens</th><th>output tokens</th><th>cost</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")  # fmt: skip


def chart(view: CostsView) -> str:
    if not view.chart or not view.ledger.total.calls:
        return '<p class="muted">no model calls in this period</p>'
    rects = "".join(
        f'<rect x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}" fill="#3b82f6">'
        f"<title>{esc(b.label)}: {domain.money(b.value)}</title></rect>"
        for b in view.chart
    )
    first, last = view.chart[0].label, view.chart[-1].label
    top = domain.money(max(b.value for b in view.chart))
    return (f'<svg id="cost-chart" role="img" aria-label="cost per day" viewBox="0 0 640 180" width="640" '
            f'height="180"><g transform="translate(0,14)">{rects}</g>'
            f'<text x="0" y="176" font-size="11">{esc(first)}</text>'
            f'<text x="640" y="10" font-size="11" text-anchor="end">max {esc(top)}/day</text>'
            f'<text x="640" y="176" font-size="11" text-anchor="end">{esc(last)}</text></svg>')  # fmt: skip


def costs(view: CostsView, access: Access) -> str:
    t = view.ledger.total
    days = "".join(f'<option value="{d}"{" selected" if d == view.days else ""}>{d} days</option>'
                   for d in (1, 7, 30, 90, 365))  # fmt: skip
    body = f"""<h1>Costs</h1><form method="get" action="/costs"><select name="days">{days}</select>
<button type="submit">show</button></form>
<p id="cost-total">{t.calls} model calls, {t.input_tokens:,} input and {t.output_tokens:,} output tokens,
{domain.money(t.cost_usd)} in the last {view.days} day(s) (the <code>llm_calls</code> ledger, UTC days).</p>
{chart(view)}{_totals("cost per agent", "by-agent", view.ledger.by_agent)}
{_totals("cost per team", "by-team", view.ledger.by_team)}{_totals("cost per day", "by-day", view.ledger.by_day)}"""
    return page("costs", body, access, active="costs")

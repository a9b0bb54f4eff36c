"""The HTML of one incident: triage, diagnosis (with the investigation report's evidence and grounding counts), the
fix and its tests, the patch as a rendered diff, risk, the approval gate (buttons for approvers), LLM calls, the
timeline and the audit lines."""

from __future__ import annotations

from decimal import Decimal

from services.console import domain
from services.console.domain import Access, DiffFile
from services.console.templates import esc, page, when
from services.console.usecase import Diagnosis, IncidentPage


def _list(items: list[str], ident: str = "") -> str:
    if not items:
        return ""
    return f"<ul{f' id={ident}' if ident else ''}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


MARK = {"add": "+", "del": "-"}


def diff_html(files: list[DiffFile]) -> str:
    out = []
    for f in files:
        rows = "".join(
            f'<tr class="{ln.kind}"><td class="ln">{ln.old or ""}</td><td class="ln">{ln.new or ""}</td>'
            f"<td>{esc(ln.text if ln.kind in ('hunk', 'meta') else MARK.get(ln.kind, ' ') + ln.text)}</td></tr>"
            for ln in f.lines
        )
        out.append(f'<div class="diff"><h4 class="mono">{esc(f.path)} <span class="muted">({esc(f.status)}, '
                   f"+{f.added} -{f.removed})</span></h4><table>{rows}</table></div>")  # fmt: skip
    return "".join(out)


def diagnosis_html(d: Diagnosis) -> str:
    parts = [
        f"<p>suspect: <span class=mono>{esc(d.suspect or 'none')}</span></p>",
        f"<p>root cause: {esc(d.root_cause)}</p>",
        f"<p>confidence {d.confidence:.2f} · strategy {esc(d.strategy)}</p>",
    ]
    if d.evidence:
        parts.append("<h3>evidence</h3>" + _list(d.evidence, "evidence"))
    if d.tried:
        parts.append("<h3>tried</h3>" + _list(d.tried))
    if d.fallback_reason:
        parts.append(f"<p class=muted>investigation fell back to the deterministic path: {esc(d.fallback_reason)}</p>")
    r = d.report
    if r is not None:
        g = r.grounding
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(g.rejected_by_kind.items())) or "none"
        claims = [
            f"{c.file}" + (f":{c.line}" if c.line else "") + (f" {c.symbol}" if c.symbol else "")
            + (f" ({c.commit[:12]})" if c.commit else "") + (f" — {c.note}" if c.note else "")
            for c in r.evidence
        ]  # fmt: skip
        parts.append(
            f"<h3>investigation report</h3><p>{esc(r.summary)}</p><p>root cause: {esc(r.root_cause)}</p>"
            f"<p>confidence {r.confidence:.2f} · fixability {esc(r.fixability)} · {r.steps} steps, "
            f"{r.tool_calls} tool calls, {domain.money(r.cost_usd)}</p>"
            + _list(claims, "report-evidence")
            + f'<p id="grounding">grounding: {g.checked} checked, {g.rejected} rejected '
            f"({esc(kinds)}){' after one retry' if g.retried else ''}</p>"
            + ("<h4>next steps</h4>" + _list(list(r.next_steps)) if r.next_steps else "")
        )
    return "".join(parts)


def approval_html(view: IncidentPage, access: Access) -> str:
    a = view.record.approval
    if a is None:
        return '<p class="muted">no approval asked for this incident</p>'
    line = f'<p id="approval-status">approval: <strong>{esc(a.status)}</strong>'
    line += f" (asked {when(a.requested_at)})"
    if a.decided_by:
        line += f" — {esc(a.decided_by)} at {when(a.decided_at)}" + (f": {esc(a.reason)}" if a.reason else "")
    line += "</p>"
    if a.status != "pending":
        return line
    if not view.can_decide:
        return line + ('<p class="muted">only approvers decide here: <a href="/login">sign in with your own token</a>'
                       " or use <code>pagerpatch approve|reject</code></p>")  # fmt: skip
    inc = view.record.incident.id
    return (
        line
        + f"""<form method="post" action="/incidents/{inc}/decision" id="decision">
<input type="hidden" name="csrf" value="{esc(view.csrf)}">
<label>reason <input name="reason" size="60" maxlength="500"></label>
<button class="approve" name="decision" value="approve" type="submit">Approve</button>
<button class="reject" name="decision" value="reject" type="submit">Reject</button>
<span class="muted">as {esc(access.approver)}</span></form>"""
    )


def llm_html(view: IncidentPage) -> str:
    calls = view.record.llm_calls
    if not calls:
        return '<p class="muted">no model calls for this incident</p>'
    rows = "".join(
        f"<tr><td>{when(c.at)}</td><td>{esc(c.agent)}</td><td>{esc(c.step)}</td><td>{esc(c.model)}</td>"
        f"<td class=num>{c.input_tokens:,}</td><td class=num>{c.output_tokens:,}</td>"
        f"<td class=num>{c.cache_read_tokens:,}</td><td class=num>{domain.money(c.cost_usd)}</td>"
        f"<td class=num>{c.latency_ms}</td><td>{esc(c.outcome)}</td></tr>"
        for c in calls
    )
    total = sum((c.cost_usd for c in calls), Decimal(0))
    tokens = sum(c.input_tokens + c.output_tokens for c in calls)
    return (f'<table id="llm-calls"><thead><tr><th>when</th><th>agent</th><th>step</th><th>model</th><th>input</th>'
            f"<th>output</th><th>cache read</th><th>cost</th><th>ms</th><th>outcome</th></tr></thead><tbody>{rows}"
            f'</tbody></table><p id="llm-total">{len(calls)} call(s), {tokens:,} tokens, '
            f"{domain.money(total)}</p>")  # fmt: skip


def incident(view: IncidentPage, access: Access, notice: str = "") -> str:
    rec = view.record
    inc = rec.incident
    pr = rec.pr
    pr_html = (f'<p id="pr">pull request: <a href="{esc(pr["url"])}">{esc(pr["url"])}</a> branch '
               f'<span class=mono>{esc(pr["branch"])}</span></p>' if pr else "")  # fmt: skip
    timeline = "".join(
        f"<tr><td>{when(e['occurred_at'])}</td><td>{esc(e['type'])}</td><td>{esc(e['source'])}</td>"
        f"<td>{esc(e['summary'])}</td></tr>"
        for e in rec.timeline
    )
    audit = "".join(f"<li>{when(a['at'])} {esc(a['actor'])}: {esc(a['action'])}</li>" for a in rec.audit)
    risk = view.risk
    body = f"""<h1>{esc(inc.title)}</h1>
<p><span class=mono>{inc.id}</span> · state <strong class="state" id="state">{esc(inc.state)}</strong> ·
severity <span class="sev-{esc(inc.severity)}">{esc(inc.severity)}</span> · service {esc(inc.service)} ·
team {esc(rec.team or "-")} · repo {esc(inc.repo or "-")} · seen {inc.occurrences}x ·
opened {domain.age(inc.opened_at, view.now)} ago</p>{pr_html}
{f"<p>outcome: {esc(inc.outcome)}</p>" if inc.outcome else ""}
<p class="muted" id="live-status"></p>
<section><h2>Triage</h2>{_list(list(inc.reasons), "reasons") or '<p class="muted">no reasons recorded</p>'}
{_list(rec.triage)}</section>
<section><h2>Diagnosis</h2>{diagnosis_html(view.diagnosis) if view.diagnosis else '<p class="muted">none yet</p>'}
</section>
<section><h2>Fix and tests</h2>{_list(view.fix, "fix") or '<p class="muted">no validated fix</p>'}
{_list(view.failed, "fix-failed")}{diff_html(view.diff)}</section>
<section><h2>Risk</h2>{f'<p id="risk">{esc(risk.level)} (score {risk.score})</p>' + _list(list(risk.reasons))
                       if risk else '<p class="muted">not assessed</p>'}</section>
<section><h2>Approval</h2>{approval_html(view, access)}</section>
<section><h2>LLM calls</h2>{llm_html(view)}</section>
<section><h2>Timeline</h2><table id="timeline"><thead><tr><th>when</th><th>event</th><th>by</th><th>summary</th></tr>
</thead><tbody>{timeline}</tbody></table></section>
<section><h2>Audit</h2>{f"<ul id=audit>{audit}</ul>" if audit else '<p class="muted">nothing audited</p>'}
</section>"""  # fmt: skip
    return page(inc.title[:60], body, access, active="incident", notice=notice, stream="pagerpatch.>",
                incident=str(inc.id))  # fmt: skip

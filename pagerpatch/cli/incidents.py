"""Commands on incidents: `incidents list/show`, the approval gate (`approve`, `reject`) and `send` (an alert in)."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import typer
from rich.markup import escape
from rich.table import Table

from pagerpatch.cli.app import connected, console, current_settings, err, running_endpoints, with_db
from pagerpatch.cli.report import incident_report, latest, patch_of
from pagerpatch.incidents import IncidentRepository, IncidentView
from pagerpatch.ops import endpoints, webhooks
from pagerpatch.settings import Settings
from schemas.codec import decode
from schemas.envelope import Event
from schemas.events import DiagnosisReady

incidents_app = typer.Typer(help="Incidents.", no_args_is_help=True)


# ------------------------------------------------------------------ send
def send(
    file: Annotated[Path, typer.Argument(help="A JSON alert in pagerpatch's generic format.", exists=True)],
    url: Annotated[str | None, typer.Option(help="Ingest base URL (default: the running one).")] = None,
    delivery_id: Annotated[str | None, typer.Option(help="Idempotency key; a retry with it is not doubled.")] = None,
) -> None:
    """Post an alert file to the generic webhook."""
    settings = current_settings()
    base = url or _ingest_url(settings)
    body = file.read_bytes()
    headers = {"content-type": "application/json", **webhooks.generic_signature_headers(settings, body)}
    if delivery_id:
        headers["x-pagerpatch-delivery"] = delivery_id
    try:
        resp = httpx.post(f"{base}/webhooks/generic", content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        err.print(f"[red]could not reach ingest at {base}: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{resp.status_code} {resp.text}")
    raise typer.Exit(0 if resp.status_code < 300 else 1)


def _ingest_url(settings: Settings) -> str:
    live = endpoints.running(settings.state_dir)
    return live.ingest_url if live else f"http://{settings.ingest_host}:{settings.ingest_port}"


# ------------------------------------------------------------------ approvals
def _decide(incident: str, decision: str, reason: str, by: str) -> None:
    """Publish the human's decision on a pending approval; exits 1 when there is nothing pending to decide."""
    from pagerpatch.kernel import bus  # FastStream: loaded by the commands that publish, not by every command
    from schemas.events import ApprovalDecided, ApprovalDecidedPayload

    settings = current_settings()
    ep = running_endpoints(settings)

    async def go() -> str:
        async with connected(ep.database_url) as conn:
            inc = await IncidentRepository(conn).find(incident)
            if inc is None:
                return f"no incident matches {incident!r}"
            status = await conn.fetchval("SELECT status FROM approvals WHERE incident_id = $1", inc.id)
        if status is None:
            return f"incident {inc.id} is not waiting for approval (state: {inc.state})"
        if status != "pending":
            return f"incident {inc.id} was already {status}"
        event = ApprovalDecided.create(
            ApprovalDecidedPayload(decision=decision, decided_by=by, reason=reason, channel="cli"),
            source="cli",
            incident_id=inc.id,
            team=settings.team,
        )
        broker = bus.make_broker(ep.nats_url, name="cli")
        await broker.connect()
        try:
            await bus.publish(broker, event)
        finally:
            await broker.stop()
        return ""

    problem = asyncio.run(go())
    if problem:
        err.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)
    console.print(f"{decision} recorded for {incident}")


def _user() -> str:
    try:
        return os.getlogin()
    except OSError:
        return f"uid-{os.getuid()}"


def approve(
    incident: Annotated[str, typer.Argument(help="Incident id (or unambiguous prefix).")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    by: Annotated[str | None, typer.Option(help="Who decides (default: your user name).")] = None,
) -> None:
    """Approve a fix waiting at the approval gate; its pull request is opened."""
    _decide(incident, "approve", reason, by or _user())


def reject(
    incident: Annotated[str, typer.Argument(help="Incident id (or unambiguous prefix).")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the incident).")] = "",
    by: Annotated[str | None, typer.Option(help="Who decides (default: your user name).")] = None,
) -> None:
    """Reject a fix waiting at the approval gate; the incident ends with the reason recorded."""
    _decide(incident, "reject", reason, by or _user())


# ------------------------------------------------------------------ incidents
# Below this many columns a table of incidents has no room for titles: each incident takes two lines instead.
LIST_TABLE_MIN_WIDTH = 140


@incidents_app.command("list")
def incidents_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50) -> None:
    """Incidents and their state (whole ids at any terminal width: they are what the other commands take)."""
    rows = with_db(current_settings(), lambda conn: IncidentRepository(conn).list_recent(limit))
    if not rows:
        console.print("no incidents")
        return
    if console.width < LIST_TABLE_MIN_WIDTH:
        for r in rows:
            console.print(f"{r.id}  {r.severity}  {r.state}  {r.service}  seen {r.occurrences}x  "
                          f"opened {str(r.opened_at)[:16]}", markup=False, soft_wrap=True)  # fmt: skip
            console.print(f"    {r.title}", markup=False, soft_wrap=True)
        return
    table = Table("id", "opened", "sev", "state", "service", "seen")
    for column in table.columns[:4]:
        column.no_wrap = True
    table.add_column("title", overflow="fold")
    for r in rows:
        table.add_row(str(r.id), str(r.opened_at)[:16], r.severity, r.state, escape(r.service), str(r.occurrences),
                      escape(r.title))  # fmt: skip
    console.print(table)


@incidents_app.command("show")
def incidents_show(
    incident: Annotated[str, typer.Argument(help="Incident id (or unambiguous prefix).")],
    diff: Annotated[bool, typer.Option("--diff", help="Also print the validated fix's patch.")] = False,
) -> None:
    """State, reasons, suspect, proof, tests, risk and the event timeline of one incident."""

    async def fetch(conn: asyncpg.Connection) -> Shown:
        inc = await IncidentRepository(conn).find(incident)
        if inc is None:
            return Shown(None)
        pr = await conn.fetchrow("SELECT branch, url, head_commit FROM pull_requests WHERE incident_id = $1", inc.id)
        timeline = await IncidentRepository(conn).timeline(inc.id)
        triage = await _triage_lines(conn, inc.id)
        return Shown(inc, timeline, dict(pr) if pr else None, triage, await _stage_outputs(conn, inc.id))

    shown = with_db(current_settings(), fetch)
    inc = shown.incident
    if inc is None:
        err.print(f"no incident matches {incident!r}", style="red", markup=False)
        raise typer.Exit(1)
    say = partial(console.print, soft_wrap=True, markup=False)
    console.print(f"[bold]{escape(inc.title)}[/bold]")
    console.print(f"id {inc.id}  state [bold]{inc.state}[/bold]  severity {inc.severity}  service {inc.service}")
    say(f"repo {inc.repo or '-'}  seen {inc.occurrences}x  opened {inc.opened_at}  last seen {inc.last_seen_at}")
    if inc.outcome:
        say(f"outcome: {inc.outcome}")
    if inc.reasons:
        say("reasons (why triage opened it):")
        for reason in inc.reasons:
            say(f"  - {reason}")
    for line in shown.triage:
        say(line)
    for line in incident_report(shown.outputs):
        say(line)
    for line in investigation_lines(shown.outputs):
        say(line)
    if shown.pr:
        pr = shown.pr
        say(f"pull request: branch {pr['branch']} at {pr['url']} (head {pr['head_commit'][:12]})")
    table = Table("when", "event", "by", "summary")
    for e in shown.timeline:
        table.add_row(str(e["occurred_at"])[:23], e["type"], e["source"], escape(e["summary"]))
    console.print(table)
    if diff:
        patch = patch_of(shown.outputs)
        say(patch.rstrip("\n") if patch else "no patch: no fix was validated for this incident")


def investigation_lines(events: list[Event[Any]]) -> list[str]:
    """The investigation agent's report (docs/investigation.md): grounding counts and cost; or why it did not stand."""
    ready = latest(events, DiagnosisReady)
    if ready is None:
        return []
    d = ready.payload
    if d.report is None:
        return [f"investigation: none ({d.fallback_reason})"] if d.fallback_reason else []
    r, g = d.report, d.report.grounding
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(g.rejected_by_kind.items()))
    lines = [
        f"investigation: {r.steps} step(s), {r.tool_calls} tool call(s), ${r.cost_usd:.4f}; fixability {r.fixability}",
        f"grounding: {g.checked} claim(s) checked, {g.rejected} rejected"
        + (f" ({kinds})" if kinds else "")
        + ("; the report went back to the model once" if g.retried else ""),
        f"summary: {r.summary}",
    ]
    lines += [f"next step: {s}" for s in r.next_steps]
    lines += [f"would have helped: {s}" for s in r.would_have_helped]
    return lines


@dataclass(frozen=True)
class Shown:
    """Everything `incidents show` prints, read in one connection."""

    incident: IncidentView | None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    pr: dict[str, Any] | None = None
    triage: list[str] = field(default_factory=list)
    outputs: list[Event[Any]] = field(default_factory=list)


async def _stage_outputs(conn: asyncpg.Connection, incident_id: Any) -> list[Event[Any]]:
    """The events the stages produced for an incident, in the order they happened: each finished checkpoint
    keeps its outputs whole (diagnosis, fix, review), which the timeline only summarizes."""
    rows = await conn.fetch(
        """SELECT outputs FROM checkpoints WHERE incident_id = $1 AND status = 'done'
           ORDER BY finished_at, event_id""",
        incident_id,
    )
    events: dict[str, Event[Any]] = {}
    for row in rows:
        for output in row["outputs"]:
            try:
                events.setdefault(output["event_id"], decode(output["data"]))
            except ValueError:  # a type this CLI does not know (UnknownEventType), or not an event: not shown
                continue
    return sorted(events.values(), key=lambda e: e.occurred_at)


async def _triage_lines(conn: asyncpg.Connection, incident_id: Any) -> list[str]:
    """Triage's decisions on the alerts of an incident: counts by class and the latest one's reasons."""
    if not await conn.fetchval("SELECT to_regclass('alert_observations') IS NOT NULL"):
        return []
    rows = await conn.fetch(
        """SELECT decision, status, count(*) AS n FROM alert_observations WHERE incident_id = $1
           GROUP BY decision, status ORDER BY decision, status""",
        incident_id,
    )
    if not rows:
        return []
    counts = ", ".join(f"{r['n']} {r['decision']}{' (resolved)' if r['status'] == 'resolved' else ''}" for r in rows)
    last = await conn.fetchrow(
        """SELECT decision, reasons, observed_at FROM alert_observations WHERE incident_id = $1
           ORDER BY observed_at DESC, recorded_at DESC LIMIT 1""",
        incident_id,
    )
    lines = [f"triage decisions on its alerts: {counts}"]
    if last is not None:
        reasons = last["reasons"] if isinstance(last["reasons"], list) else json.loads(last["reasons"])
        lines.append(f"latest ({last['decision']}, {str(last['observed_at'])[:19]}): " + "; ".join(reasons))
    return lines

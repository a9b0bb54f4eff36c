"""The `pagerpatch` command line."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.table import Table

from pagerpatch.incidents import IncidentRepository, IncidentView
from pagerpatch.kernel import bus, deadletter, store
from pagerpatch.ops import endpoints, webhooks
from pagerpatch.settings import ConfigError, Settings, load_settings

T = TypeVar("T")

app = typer.Typer(help="pagerpatch: production alerts into tested, reviewed pull requests.", no_args_is_help=True)
bus_app = typer.Typer(help="The event bus.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
events_app = typer.Typer(help="Events on the stream.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters.", no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents.", no_args_is_help=True)
repos_app = typer.Typer(help="Repositories pagerpatch may diagnose and patch.", no_args_is_help=True)
app.add_typer(repos_app, name="repos")
app.add_typer(bus_app, name="bus")
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
app.add_typer(incidents_app, name="incidents")
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _endpoints(settings: Settings) -> endpoints.Endpoints:
    try:
        return endpoints.resolve(settings)
    except endpoints.NotRunning as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _with_db(settings: Settings, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `fn` on one connection to the running system's database."""
    ep = _endpoints(settings)

    async def go() -> T:
        async with store.connection(ep.database_url) as conn:
            return await fn(conn)

    return asyncio.run(go())


# ------------------------------------------------------------------ up
@app.command()
def up(
    services: Annotated[
        str, typer.Option(help="Comma-separated services to run (default: all six).")
    ] = "ingest,triage,diagnosis,fixgen,review,notifier",
) -> None:
    """Start everything: embedded NATS and Postgres if needed, bus set-up, migrations, all services."""
    from pagerpatch.ops.runner import run_up

    settings = _settings()
    names = [s.strip() for s in services.split(",") if s.strip()]
    raise typer.Exit(asyncio.run(run_up(settings, names)))


# ------------------------------------------------------------------ bus / db
@bus_app.command("setup")
def bus_setup() -> None:
    """Create or update the streams and every durable consumer to match the definitions."""
    settings = _settings()
    ep = _endpoints(settings)
    report = asyncio.run(bus.setup_url(ep.nats_url, settings.bus))
    for name, what in {**report.streams, **report.consumers}.items():
        console.print(f"{what:>8}  {name}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending SQL migrations, in order."""
    settings = _settings()
    ep = _endpoints(settings)
    applied = asyncio.run(store.migrate(ep.database_url))
    console.print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


# ------------------------------------------------------------------ events
@events_app.command("tail")
def events_tail(
    subject: Annotated[str, typer.Option(help="Subject filter, e.g. pagerpatch.incident.>")] = "pagerpatch.>",
    all_: Annotated[bool, typer.Option("--all", help="Start from the beginning of the stream.")] = False,
    count: Annotated[int, typer.Option(help="Stop after this many events (0: follow forever).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each event as one JSON line.")] = False,
) -> None:
    """Live view of the event stream."""
    settings = _settings()
    ep = _endpoints(settings)
    asyncio.run(_tail(ep.nats_url, subject, all_, count, as_json))


async def _tail(url: str, subject: str, from_start: bool, count: int, as_json: bool) -> None:
    from nats.js.api import DeliverPolicy

    from schemas import streams

    nc = await bus.connect(url, "pagerpatch-cli-tail")
    js = nc.jetstream()
    policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
    sub = await js.subscribe(subject, stream=streams.EVENTS_STREAM, ordered_consumer=True, deliver_policy=policy)
    seen = 0
    try:
        while count == 0 or seen < count:
            try:
                msg = await sub.next_msg(timeout=3600)
            except TimeoutError:
                continue
            seen += 1
            if as_json:
                console.print(msg.data.decode(errors="replace"), soft_wrap=True)
                continue
            try:
                data = json.loads(msg.data)
                summary = _summary(data)
                inc = (data.get("incident_id") or "-")[:8]
                console.print(
                    f"{data.get('occurred_at', '')[:23]}  {data.get('type', msg.subject):<20} {inc}  {summary}"
                )
            except ValueError:
                console.print(f"{msg.subject}: {msg.data[:200]!r}")
    finally:
        await nc.drain()


def _summary(data: dict[str, Any]) -> str:
    p = data.get("payload") or {}
    for key in ("title", "root_cause", "reason", "branch", "summary", "text", "decision"):
        if p.get(key):
            return str(p[key]).splitlines()[0][:100]
    return ""


# ------------------------------------------------------------------ dead letters
@dlq_app.command("list")
def dlq_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50) -> None:
    """Dead letters: poison input and messages that exhausted max_deliver, with the reason."""
    rows = _with_db(_settings(), lambda conn: deadletter.list_dead_letters(conn, limit))
    if not rows:
        console.print("no dead letters")
        return
    table = Table("id", "when", "consumer", "seq", "kind", "event", "reason")
    for r in rows:
        table.add_row(str(r.id), str(r.recorded_at)[:19], r.consumer, str(r.stream_seq), r.kind,
                      str(r.event_id or "-")[:8], r.reason)  # fmt: skip
    console.print(table)


# ------------------------------------------------------------------ send
@app.command()
def send(
    file: Annotated[Path, typer.Argument(help="A JSON alert in pagerpatch's generic format.", exists=True)],
    url: Annotated[str | None, typer.Option(help="Ingest base URL (default: the running one).")] = None,
    delivery_id: Annotated[str | None, typer.Option(help="Idempotency key; a retry with it is not doubled.")] = None,
) -> None:
    """Post an alert file to the generic webhook."""
    settings = _settings()
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
    from schemas.events import ApprovalDecided, ApprovalDecidedPayload

    settings = _settings()
    ep = _endpoints(settings)

    async def go() -> str:
        async with store.connection(ep.database_url) as conn:
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


@app.command()
def approve(
    incident: Annotated[str, typer.Argument(help="Incident id (or unambiguous prefix).")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    by: Annotated[str | None, typer.Option(help="Who decides (default: your user name).")] = None,
) -> None:
    """Approve a fix waiting at the approval gate; its pull request is opened."""
    _decide(incident, "approve", reason, by or _user())


@app.command()
def reject(
    incident: Annotated[str, typer.Argument(help="Incident id (or unambiguous prefix).")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the incident).")] = "",
    by: Annotated[str | None, typer.Option(help="Who decides (default: your user name).")] = None,
) -> None:
    """Reject a fix waiting at the approval gate; the incident ends with the reason recorded."""
    _decide(incident, "reject", reason, by or _user())


# ------------------------------------------------------------------ incidents
@incidents_app.command("list")
def incidents_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50) -> None:
    """Incidents and their state."""
    rows = _with_db(_settings(), lambda conn: IncidentRepository(conn).list_recent(limit))
    if not rows:
        console.print("no incidents")
        return
    table = Table("id", "opened", "sev", "state", "service", "seen", "title")
    for r in rows:
        table.add_row(str(r.id), str(r.opened_at)[:19], r.severity, r.state, r.service, str(r.occurrences), r.title)
    console.print(table)


@incidents_app.command("show")
def incidents_show(incident: Annotated[str, typer.Argument(help="Incident id (or unambiguous prefix).")]) -> None:
    """State, reasons and the event timeline of one incident."""

    async def fetch(
        conn: asyncpg.Connection,
    ) -> tuple[IncidentView | None, list[dict[str, Any]], dict[str, Any] | None, list[str]]:
        inc = await IncidentRepository(conn).find(incident)
        if inc is None:
            return None, [], None, []
        pr = await conn.fetchrow("SELECT branch, url, head_commit FROM pull_requests WHERE incident_id = $1", inc.id)
        events = await IncidentRepository(conn).timeline(inc.id)
        return inc, events, dict(pr) if pr else None, await _triage_lines(conn, inc.id)

    inc, events, pr, triage_lines = _with_db(_settings(), fetch)
    if inc is None:
        err.print(f"[red]no incident matches {incident!r}[/red]")
        raise typer.Exit(1)
    console.print(f"[bold]{inc.title}[/bold]")
    console.print(f"id {inc.id}  state [bold]{inc.state}[/bold]  severity {inc.severity}  service {inc.service}")
    console.print(
        f"repo {inc.repo or '-'}  seen {inc.occurrences}x  opened {inc.opened_at}  last seen {inc.last_seen_at}"
    )
    if inc.outcome:
        console.print(f"outcome: {inc.outcome}")
    if inc.reasons:
        console.print("reasons (why triage opened it):", soft_wrap=True)
        for reason in inc.reasons:
            console.print(f"  - {reason}", soft_wrap=True)
    for line in triage_lines:
        console.print(line, soft_wrap=True)
    if pr:
        console.print(f"pull request: branch {pr['branch']} at {pr['url']} (head {pr['head_commit'][:12]})")
    table = Table("when", "event", "by", "summary")
    for e in events:
        table.add_row(str(e["occurred_at"])[:23], e["type"], e["source"], e["summary"])
    console.print(table)


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


# ------------------------------------------------------------------ repos
@repos_app.command("add")
def repos_add(
    name: Annotated[str, typer.Argument(help="Repository name (letters, digits, . _ -).")],
    path: Annotated[str, typer.Option(help="Local path or clone URL of the repository.")],
    service: Annotated[list[str] | None, typer.Option(help="A service this repository serves (repeatable).")] = None,
    test_command: Annotated[str, typer.Option(help="The repository's test command.")] = "python -m pytest -q",
    default_branch: Annotated[str, typer.Option(help="Default branch.")] = "main",
) -> None:
    """Register a repository at run time (config `repos:` entries take precedence on a name clash)."""
    from pydantic import ValidationError

    from pagerpatch.git import repos
    from pagerpatch.settings import RepoConfig

    try:
        repo = RepoConfig(name=name, path=path, services=service or [], test_command=test_command,
                          default_branch=default_branch)  # fmt: skip
    except ValidationError as exc:
        err.print(f"[red]invalid repository: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from None
    _with_db(_settings(), lambda conn: repos.register(conn, repo))
    console.print(f"registered {name}")


@repos_app.command("list")
def repos_list() -> None:
    """Repositories from config and those registered at run time."""
    from pagerpatch.git import repos

    settings = _settings()
    table = Table("name", "location", "branch", "services", "test command")
    for r in _with_db(settings, lambda conn: repos.all_repos(settings, conn)):
        table.add_row(r.name, r.path or r.url or "", r.default_branch, ",".join(r.services), r.test_command)
    console.print(table)


# ------------------------------------------------------------------ eval
eval_app = typer.Typer(help="Evaluations on labelled datasets.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
# Floors set from the measured figures on tests/evals/triage_golden.jsonl (docs/triage.md).
TRIAGE_MIN_ACCURACY = 0.99
TRIAGE_MIN_SEVERITY_ACCURACY = 0.99


@eval_app.command("triage")
def eval_triage(
    dataset: Annotated[
        Path | None, typer.Option(help="A JSONL dataset (default: the shipped tests/evals/triage_golden.jsonl).")
    ] = None,
    min_accuracy: Annotated[
        float, typer.Option(help="Exit 1 when class accuracy is below this.", min=0.0, max=1.0)
    ] = TRIAGE_MIN_ACCURACY,
    min_severity_accuracy: Annotated[
        float, typer.Option(help="Exit 1 when severity accuracy is below this.", min=0.0, max=1.0)
    ] = TRIAGE_MIN_SEVERITY_ACCURACY,
    show: Annotated[int, typer.Option(help="How many wrong decisions to list.")] = 50,
) -> None:
    """Replay a labelled alert dataset through triage (rules only) and print accuracy and the misses."""
    # The engine is the triage service's own code, imported here (not at module import) so the CLI stays light.
    from services.triage import eval as triage_eval

    path = dataset or triage_eval.shipped_dataset()
    try:
        cases = triage_eval.load_dataset(path)
    except triage_eval.DatasetError as exc:
        err.print(f"[red]malformed dataset: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    report = asyncio.run(triage_eval.run(cases))
    for part in triage_eval.render(report, cases, show):
        console.print(part, soft_wrap=isinstance(part, str))
    failed = []
    if report.class_accuracy < min_accuracy:
        failed.append(f"class accuracy {report.class_accuracy:.3f} < {min_accuracy:.3f}")
    if report.severity_accuracy < min_severity_accuracy:
        failed.append(f"severity accuracy {report.severity_accuracy:.3f} < {min_severity_accuracy:.3f}")
    if failed:
        err.print("[red]below the floor: " + "; ".join(failed) + "[/red]", soft_wrap=True)
        raise typer.Exit(1)


# ------------------------------------------------------------------ demo
@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pull request.")] = 180.0,
) -> None:
    """Run the shipped scenario end to end: a regression, its alert, and the pull request that fixes it."""
    from pagerpatch.ops.demo import run_demo

    settings = _settings()
    raise typer.Exit(asyncio.run(run_demo(settings, timeout_s=timeout)))


# ------------------------------------------------------------------ config
@config_app.command("check")
def config_check() -> None:
    """Validate settings, tools.yaml, agents.yaml, policies.yaml and prompt files (exit 1 naming file:line:field)."""
    from pagerpatch.llm.check import check_config

    report = check_config()
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    if not report.ok:
        for error in report.errors:
            err.print(f"[red]error:[/red] {error}", soft_wrap=True)
        err.print(f"[red]configuration invalid: {len(report.errors)} error(s)[/red]")
        raise typer.Exit(1)
    for line in report.summary:
        console.print(line, soft_wrap=True)
    console.print("configuration ok")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

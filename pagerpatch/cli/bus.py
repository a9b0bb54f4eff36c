"""Plumbing commands: `bus setup`, `db migrate`, `events tail`, `dlq list|show|redrive`."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from pagerpatch.cli.app import connected, console, current_settings, err, running_endpoints, with_db
from pagerpatch.kernel import deadletter, store

bus_app = typer.Typer(help="The event bus.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
events_app = typer.Typer(help="Events on the stream.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters.", no_args_is_help=True)


@bus_app.command("setup")
def bus_setup() -> None:
    """Create or update the streams and every durable consumer to match the definitions."""
    from pagerpatch.kernel import bus  # FastStream: loaded by the commands that use the bus, not by every command

    settings = current_settings()
    ep = running_endpoints(settings)
    report = asyncio.run(bus.setup_url(ep.nats_url, settings.bus))
    for name, what in {**report.streams, **report.consumers}.items():
        console.print(f"{what:>8}  {name}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending SQL migrations, in order."""
    settings = current_settings()
    ep = running_endpoints(settings)
    applied = asyncio.run(store.migrate(ep.database_url))
    console.print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


@events_app.command("tail")
def events_tail(
    subject: Annotated[str, typer.Option(help="Subject filter, e.g. pagerpatch.incident.>")] = "pagerpatch.>",
    all_: Annotated[bool, typer.Option("--all", help="Start from the beginning of the stream.")] = False,
    count: Annotated[int, typer.Option(help="Stop after this many events (0: follow forever).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each event as one JSON line.")] = False,
) -> None:
    """Live view of the event stream."""
    settings = current_settings()
    ep = running_endpoints(settings)
    asyncio.run(_tail(ep.nats_url, subject, all_, count, as_json))


async def _tail(url: str, subject: str, from_start: bool, count: int, as_json: bool) -> None:
    from nats.js.api import DeliverPolicy

    from pagerpatch.kernel import bus
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
                summary = event_summary(data)
                inc = (data.get("incident_id") or "-")[:8]
                console.print(
                    f"{data.get('occurred_at', '')[:23]}  {data.get('type', msg.subject):<20} {inc}  {summary}"
                )
            except ValueError:
                console.print(f"{msg.subject}: {msg.data[:200]!r}")
    finally:
        await nc.drain()


def event_summary(data: dict[str, Any]) -> str:
    """The one field of an event's payload that says what happened, first line, clipped for a terminal row."""
    p = data.get("payload") or {}
    for key in ("title", "root_cause", "reason", "branch", "summary", "text", "decision"):
        if p.get(key):
            return str(p[key]).splitlines()[0][:100]
    return ""


@events_app.command("replay")
def events_replay(
    to_durable: Annotated[str, typer.Option("--to-durable", help="Your durable consumer: created, or reset.")],
    since: Annotated[str | None, typer.Option(help="Start time: ISO 8601, or an age like 15m, 2h, 3d.")] = None,
    seq: Annotated[int | None, typer.Option(help="Start at this stream sequence.")] = None,
    subject: Annotated[str, typer.Option(help="Subject filter, e.g. pagerpatch.incident.>")] = "pagerpatch.>",
) -> None:
    """Point a downstream durable consumer at the log from a time or sequence, to rebuild its state (docs/replay.md);
    pagerpatch's own durables are refused."""
    from pagerpatch.replay import durable

    try:
        start = durable.checked_start(to_durable, subject, since=since, seq=seq)
    except durable.Refused as exc:
        err.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    ep = running_endpoints(current_settings())
    done = asyncio.run(durable.replay_at(ep.nats_url, to_durable, since=start, seq=seq, subject=subject))
    console.print(durable.describe(done), markup=False, soft_wrap=True)


@dlq_app.command("list")
def dlq_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50) -> None:
    """Dead letters: poison input and messages that exhausted max_deliver, with the reason."""
    rows = with_db(current_settings(), lambda conn: deadletter.list_dead_letters(conn, limit))
    if not rows:
        console.print("no dead letters")
        return
    table = Table("id", "when", "consumer", "seq", "kind", "event", "redriven", "reason")
    for r in rows:
        table.add_row(str(r.id), str(r.recorded_at)[:19], r.consumer, str(r.stream_seq), r.kind,
                      str(r.event_id or "-")[:8], str(r.redriven_at or "-")[:19], r.reason)  # fmt: skip
    console.print(table)


@dlq_app.command("show")
def dlq_show(
    letter_id: Annotated[int, typer.Argument(help="Dead letter id (from `dlq list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """One dead letter: where it came from, why it died and the message it carried."""
    letter = with_db(current_settings(), lambda conn: deadletter.get_dead_letter(conn, letter_id))
    if letter is None:
        err.print(f"no dead letter {letter_id} (see `pagerpatch dlq list`)", style="red", markup=False)
        raise typer.Exit(1)
    console.print(dead_letter_text(letter, as_json=as_json), soft_wrap=True, markup=False, highlight=False)


def dead_letter_text(letter: deadletter.DeadLetter, *, as_json: bool = False) -> str:
    """`dlq show`'s output: the fields, then the payload (pretty-printed when it is JSON, as stored when not)."""
    try:
        payload: Any = json.loads(letter.data)
    except ValueError:
        payload = None
    fields = {
        "id": letter.id, "consumer": letter.consumer, "stream": letter.stream, "stream_seq": letter.stream_seq,
        "subject": letter.subject, "event_id": str(letter.event_id) if letter.event_id else None, "kind": letter.kind,
        "deliveries": letter.deliveries, "recorded_at": str(letter.recorded_at),
        "redriven_at": str(letter.redriven_at) if letter.redriven_at else None, "reason": letter.reason,
    }  # fmt: skip
    if as_json:
        return json.dumps({**fields, "payload": payload, "raw": None if payload is not None else letter.data})
    lines = [f"{k:12} {'-' if v is None else v}" for k, v in fields.items()]
    body = json.dumps(payload, indent=2, sort_keys=True) if payload is not None else letter.data or "(empty)"
    return "\n".join([*lines, "payload:" if payload is not None else "payload (not JSON, as stored):", body])


@dlq_app.command("redrive")
def dlq_redrive(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids (from `dlq list`).")] = None,
    consumer: Annotated[str | None, typer.Option(help="Only this durable consumer's dead letters.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter not yet redriven.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be redriven; change nothing.")] = False,
) -> None:
    """Publish dead-lettered messages again once their cause is fixed; each letter is redriven at most once."""
    if not ids and not all_ and consumer is None:
        err.print("nothing selected: name dead letter ids (see `pagerpatch dlq list`), --consumer NAME or --all",
                  style="red", markup=False)  # fmt: skip
        raise typer.Exit(2)
    ep = running_endpoints(current_settings())
    results = asyncio.run(redrive_letters(ep.database_url, ep.nats_url, ids or [], consumer, dry_run=dry_run))
    if not results:
        console.print("no dead letters to redrive")
    for r in results:
        console.print(f"#{r.letter_id}  {'' if r.done else 'skipped: '}{r.message}", soft_wrap=True, markup=False)
    if any(not r.done and not r.message.startswith("already redriven") for r in results):
        raise typer.Exit(1)


async def redrive_letters(
    database_url: str, nats_url: str, ids: list[int], consumer: str | None, *, dry_run: bool = False
) -> list[deadletter.Redrive]:
    """Redrive the selected dead letters (see `deadletter.redrive`), one result per letter, in order."""
    from pagerpatch.kernel import bus

    async with connected(database_url) as conn:
        selected = await deadletter.select_for_redrive(conn, ids, consumer)
        if not selected:
            return []
        nc = await bus.connect(nats_url, "pagerpatch-cli-redrive")
        try:
            js = nc.jetstream()
            return [await deadletter.redrive(conn, js, letter_id, dry_run=dry_run) for letter_id in selected]
        finally:
            await nc.drain()

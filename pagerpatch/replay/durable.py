"""`pagerpatch events replay`: a durable consumer of a downstream team, (re)positioned on the events stream so it
reads the log again from a time or a sequence, filtered by subject -- how that team rebuilds its state.

pagerpatch's own durables (schemas/streams.py) and their dead-letter recorders are never touched: moving one would
make a stage handle old events again. The consumer is a pull consumer with explicit acks (docs/replay.md has
the recipe that reads it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from schemas import streams, subjects

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # what a durable name may be (no '.', '*', '>' or spaces)
DEFAULT_ACK_WAIT_S = 30.0


class Refused(ValueError):
    """The request cannot be honoured as given (a reserved or invalid name, a bad start)."""


@dataclass(frozen=True)
class Positioned:
    durable: str
    action: str  # "created" or "reset"
    subject: str
    start: str  # "sequence N" or "time T"
    pending: int  # messages waiting for it right now


def reserved_durables() -> frozenset[str]:
    """The durables pagerpatch owns: every stage consumer and its dead-letter recorder."""
    own = {c.durable for c in streams.CONSUMERS}
    return frozenset(own | {d + streams.ADVISORY_DURABLE_SUFFIX for d in own})


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise Refused(f"{name!r} is not a durable name (letters, digits, '-' and '_', at most 128)")
    if name in reserved_durables():
        raise Refused(f"{name!r} is one of pagerpatch's own durable consumers (schemas/streams.py); "
                      "replaying into it would make a stage handle old events again: choose another name")  # fmt: skip


def parse_since(text: str, now: datetime) -> datetime:
    """A start time: ISO 8601 (`2026-05-01T12:00:00Z`; no zone means UTC) or an age (`90s`, `15m`, `2h`, `3d`,
    `1w`) before `now`."""
    value = text.strip()
    rel = _RELATIVE.match(value.lower())
    if rel:
        return now - timedelta(seconds=float(rel.group(1)) * _UNITS[rel.group(2)])
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"--since {text!r}: not an ISO 8601 time nor an age like 15m, 2h or 3d") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def consumer_config(name: str, subject: str, *, since: datetime | None, seq: int | None) -> ConsumerConfig:
    """The durable pull consumer reading `subject` from `since` or from stream sequence `seq` (exactly one)."""
    if (since is None) == (seq is None):
        raise Refused("give exactly one start: --since TIME or --seq N")
    if seq is not None and seq < 1:
        raise Refused(f"--seq {seq}: stream sequences start at 1")
    start = {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": since} if since is not None else \
        {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": seq}  # fmt: skip
    return ConsumerConfig(
        durable_name=name, name=name, description=f"replay of {subject} (pagerpatch events replay)",
        ack_policy=AckPolicy.EXPLICIT, ack_wait=DEFAULT_ACK_WAIT_S, filter_subject=subject, **start,
    )  # fmt: skip


async def replay_to_durable(
    js: JetStreamContext, name: str, *, since: datetime | None = None, seq: int | None = None,
    subject: str = subjects.ALL_EVENTS,
) -> Positioned:  # fmt: skip
    """Create durable `name` on the events stream at the given start, or reset it there when it exists (deleted and
    made again: JetStream cannot move a consumer's start)."""
    check_name(name)
    if not subject.startswith(subjects.PREFIX + ".") and subject != subjects.ALL_EVENTS:
        raise Refused(f"--subject {subject!r} is not on the events stream (subjects start with 'pagerpatch.')")
    config = consumer_config(name, subject, since=since, seq=seq)
    try:
        await js.consumer_info(streams.EVENTS_STREAM, name)
        await js.delete_consumer(streams.EVENTS_STREAM, name)
        action = "reset"
    except NotFoundError:
        action = "created"
    info = await js.add_consumer(streams.EVENTS_STREAM, config=config)
    start = f"sequence {seq}" if seq is not None else f"time {since.isoformat() if since else ''}"
    return Positioned(name, action, subject, start, int(info.num_pending or 0))


def checked_start(name: str, subject: str, *, since: str | None, seq: int | None) -> datetime | None:
    """The command's arguments checked before anything is touched: the start time (None with `--seq`)."""
    start = parse_since(since, datetime.now(UTC)) if since is not None else None
    check_name(name)
    consumer_config(name, subject, since=start, seq=seq)
    return start


async def replay_at(
    url: str, name: str, *, since: datetime | None, seq: int | None, subject: str = subjects.ALL_EVENTS
) -> Positioned:
    """`replay_to_durable` on the NATS at `url`."""
    from pagerpatch.kernel import bus  # FastStream and nats: loaded by the command that uses them

    nc = await bus.connect(url, "pagerpatch-cli-events-replay")
    try:
        return await replay_to_durable(nc.jetstream(), name, since=since, seq=seq, subject=subject)
    finally:
        await nc.drain()


def describe(done: Positioned) -> str:
    return (f"{done.action} durable {done.durable} on {streams.EVENTS_STREAM}: {done.subject} from {done.start}; "
            f"{done.pending} message(s) waiting (read it as a pull consumer: docs/replay.md)")  # fmt: skip

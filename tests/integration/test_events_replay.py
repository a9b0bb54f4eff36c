"""`pagerpatch events replay` on a real nats-server: a downstream durable is created at a sequence or a time with a
subject filter and receives exactly the log from there; run again it is reset; pagerpatch's own durables are
refused and left as they were."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nats.js import JetStreamContext
from typer.testing import Result

from pagerpatch.kernel import bus
from pagerpatch.settings import BusSettings
from schemas import streams
from schemas.codec import encode
from schemas.envelope import Event
from schemas.events import AlertReceived, AlertReceivedPayload, IncidentOpened, IncidentOpenedPayload, Severity
from tests.support.cli import run_cli

pytestmark = pytest.mark.integration


def events(n: int) -> list[Event[Any]]:
    """n alerts, each followed by the incident it opened."""
    out: list[Event[Any]] = []
    for i in range(n):
        alert = AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title=f"alert {i}"),
                                     source="ingest")  # fmt: skip
        opened = IncidentOpenedPayload(fingerprint=f"fp{i}", title=f"alert {i}", service="checkout",
                                       severity=Severity.P2)  # fmt: skip
        out += [alert, alert.derive(IncidentOpened, opened, stage="triage", incident_id=uuid.uuid4())]
    return out


async def publish(js: JetStreamContext, batch: list[Event[Any]]) -> list[int]:
    acks = [await js.publish(e.subject, encode(e), headers={"Nats-Msg-Id": str(e.event_id)}) for e in batch]
    return [a.seq for a in acks]


async def drain(js: JetStreamContext, durable: str, subject: str) -> list[tuple[int, str]]:
    """Everything the durable delivers now: (stream sequence, event id), each acked."""
    sub = await js.pull_subscribe(subject, durable=durable, stream=streams.EVENTS_STREAM)
    got: list[tuple[int, str]] = []
    while True:
        try:
            msgs = await sub.fetch(50, timeout=1.0)
        except TimeoutError:
            break
        for m in msgs:
            got.append((m.metadata.sequence.stream, m.headers["Nats-Msg-Id"] if m.headers else ""))
            await m.ack()
    await sub.unsubscribe()
    return got


async def invoke(nats_url: str, home: Path, *args: str) -> Result:
    unused = "postgresql://unused@127.0.0.1:1/none"
    return await run_cli("events", "replay", *args, home=home, database_url=unused, nats_url=nats_url)


async def test_a_downstream_durable_reads_the_log_again_from_a_sequence_or_a_time(
    nats_url: str, js: JetStreamContext, tmp_path: Path
) -> None:
    await bus.setup(js, BusSettings())
    early = events(3)
    seqs = await publish(js, early)
    await asyncio.sleep(0.05)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.05)
    late = events(2)
    late_seqs = await publish(js, late)

    from_seq = seqs[2]  # the second alert: its incident.opened and everything after
    done = await invoke(nats_url, tmp_path, "--seq", str(from_seq), "--subject", "pagerpatch.incident.>",
                        "--to-durable", "warehouse")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "created durable warehouse" in done.output and "4 message(s) waiting" in done.output
    wanted = [(s, str(e.event_id)) for s, e in zip(seqs + late_seqs, early + late, strict=True)
              if s >= from_seq and e.type == "incident.opened"]  # fmt: skip
    assert await drain(js, "warehouse", "pagerpatch.incident.>") == wanted
    assert await drain(js, "warehouse", "pagerpatch.incident.>") == []  # acked: read once

    again = await invoke(nats_url, tmp_path, "--since", middle.isoformat(), "--to-durable", "warehouse")
    assert again.exit_code == 0, again.output
    assert "reset durable warehouse" in again.output
    assert await drain(js, "warehouse", "pagerpatch.>") == [(s, str(e.event_id)) for s, e in
                                                            zip(late_seqs, late, strict=True)]  # fmt: skip


async def test_pagerpatch_s_own_durables_are_refused_and_left_alone(
    nats_url: str, js: JetStreamContext, tmp_path: Path
) -> None:
    await bus.setup(js, BusSettings())
    await publish(js, events(1))
    before = await js.consumer_info(streams.EVENTS_STREAM, "triage")
    for name in ("triage", "notifier-approved", "fixgen-deadletters"):
        refused = await invoke(nats_url, tmp_path, "--seq", "1", "--to-durable", name)
        assert refused.exit_code == 2, refused.output
        assert "pagerpatch's own durable consumers" in refused.output
    after = await js.consumer_info(streams.EVENTS_STREAM, "triage")
    assert (after.config.deliver_policy, after.created, after.num_pending) == (
        before.config.deliver_policy, before.created, before.num_pending)  # fmt: skip
    neither = await invoke(nats_url, tmp_path, "--to-durable", "warehouse")
    assert neither.exit_code == 2 and "exactly one start" in neither.output
    bad_time = await invoke(nats_url, tmp_path, "--since", "yesterday-ish", "--to-durable", "warehouse")
    assert bad_time.exit_code == 2 and "not an ISO 8601 time" in bad_time.output

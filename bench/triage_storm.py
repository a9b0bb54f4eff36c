"""Benchmark: an alert storm through the triage hop, next to the raw nats-py JetStream hop on the same machine.

    .venv/bin/python bench/triage_storm.py [--storm 10000] [--distinct 1000] [--raw 10000]

Starts the embedded NATS + Postgres, sets up the bus and the database, and runs the real triage service as its
own process (`python -m services.triage`). alert.received events are published straight to the stream with
awaited, deduplicated publishes (what ingest does after its HTTP checks; HTTP itself is not measured here).
Prints:
- raw hop: N messages published to a scratch stream and consumed + acked through a durable pull consumer;
- storm: N alerts of one group (the same error from many replicas): incidents opened (expect 1), decisions,
  model calls (expect 0), drain time, alerts/s, the triage process's RSS at start / peak / end;
- distinct: N alerts of N different services: incidents/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import psutil
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pagerpatch.kernel import bus, store
from pagerpatch.ops.embedded import EmbeddedStack
from pagerpatch.settings import BusSettings
from schemas import streams, subjects
from schemas.codec import encode
from schemas.events import AlertReceived, AlertReceivedPayload

ROOT = Path(__file__).resolve().parents[1]
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/shop/api.py", line 41, in checkout\n    return quote(cart)\n'
    '  File "/srv/app/shop/pricing.py", line 88, in quote\n    return COUPONS[code]\n'
    "KeyError: 'SUMMER24'\n"
)


async def raw_hop(nats_url: str, n: int) -> float:
    """Messages/s through JetStream: awaited publishes while a durable pull consumer fetches and acks."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BENCH_RAW", subjects=["bench.raw"]))
    await js.add_consumer("BENCH_RAW", ConsumerConfig(durable_name="bench", ack_policy=AckPolicy.EXPLICIT))
    sub = await js.pull_subscribe("bench.raw", durable="bench", stream="BENCH_RAW")
    body = b"x" * 900  # about an alert.received event's size
    done = asyncio.Event()
    got = 0

    async def consume() -> None:
        nonlocal got
        while got < n:
            try:
                msgs = await sub.fetch(100, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for m in msgs:
                await m.ack()
            got += len(msgs)
        done.set()

    t0 = time.perf_counter()
    task = asyncio.create_task(consume())
    for i in range(n):
        await js.publish("bench.raw", body, headers={"Nats-Msg-Id": f"raw-{i}"})
    await done.wait()
    elapsed = time.perf_counter() - t0
    await task
    await js.delete_stream("BENCH_RAW")
    await nc.drain()
    return n / elapsed


def storm_alert(i: int, start: datetime) -> AlertReceived:
    payload = AlertReceivedPayload(
        source="generic", service="checkout", title=f"KeyError in checkout for order {100000 + i}",
        severity_hint="critical", stack_trace=TRACE, kind="error", resource=f"checkout-7f9c8d6b5-{i % 40:05d}",
        fingerprint_inputs={"title": f"KeyError in checkout for order {100000 + i}"},
        occurred_at=start + timedelta(milliseconds=i),
    )  # fmt: skip
    return AlertReceived.create(payload, source="ingest")


def distinct_alert(i: int, start: datetime) -> AlertReceived:
    payload = AlertReceivedPayload(
        source="alertmanager", service=f"svc-{i}", title="error rate above 5%", severity_hint="critical",
        kind="error", occurred_at=start, fingerprint_inputs={"alertname": "HighErrorRate"},
    )  # fmt: skip
    return AlertReceived.create(payload, source="ingest")


def cpu_by_role(triage_pid: int, home: Path) -> dict[str, float]:
    """CPU seconds so far of this benchmark, the triage process, Postgres (the postmaster under `home` and its
    backends) and nats-server."""
    me = psutil.Process()
    procs = {p.pid: p for p in me.children(recursive=True)}
    for p in psutil.process_iter(["name", "cmdline"]):
        if "postgres" in (p.info["name"] or "") and str(home) in " ".join(p.info["cmdline"] or ()):
            procs[p.pid] = p
            procs.update({c.pid: c for c in p.children(recursive=True)})
    roles = {"bench": sum(me.cpu_times()[:2]), "triage": 0.0, "postgres": 0.0, "nats": 0.0}
    for pid, proc in procs.items():
        try:
            name, cpu = proc.name(), sum(proc.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
        role = "triage" if pid == triage_pid else "postgres" if "postgres" in name else "nats" if "nats" in name else ""
        if role:
            roles[role] += cpu
    return roles


class Rss:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.samples: list[int] = []

    async def sample_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.samples.append(self.proc.memory_info().rss)
            await asyncio.sleep(0.2)

    def now(self) -> int:
        return int(self.proc.memory_info().rss)


async def triage_hop(js: nats.js.JetStreamContext, events: list[AlertReceived], rss: Rss) -> tuple[float, float]:
    """(seconds to publish, seconds until triage acked the last one)."""
    stop = asyncio.Event()
    sampler = asyncio.create_task(rss.sample_until(stop))
    t0 = time.perf_counter()
    for e in events:
        await js.publish(subjects.ALERT_RECEIVED, encode(e), stream=streams.EVENTS_STREAM,
                         headers={"Nats-Msg-Id": str(e.event_id)})  # fmt: skip
    published = time.perf_counter() - t0
    while True:
        info = await js.consumer_info(streams.EVENTS_STREAM, "triage")
        if info.num_pending == 0 and info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.01)
    drained = time.perf_counter() - t0
    stop.set()
    await sampler
    return published, drained


async def main(storm: int, distinct: int, raw: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="pagerpatch-bench-triage-"))
    embedded = EmbeddedStack(home)
    await asyncio.to_thread(embedded.start)
    proc: asyncio.subprocess.Process | None = None
    try:
        nats_url, db_url = embedded.nats_url, embedded.database_url
        await bus.setup_url(nats_url, BusSettings())
        await store.migrate(db_url)
        raw_rate = await raw_hop(nats_url, raw)

        env = {**os.environ, "NATS_URL": nats_url, "DATABASE_URL": db_url, "PAGERPATCH_HOME": str(home),
               "PAGERPATCH_LOG_LEVEL": "WARNING"}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.triage", env=env, cwd=ROOT)
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        deadline = time.monotonic() + 60
        while (await js.consumer_info(streams.EVENTS_STREAM, "triage")).num_waiting == 0:
            if time.monotonic() > deadline or proc.returncode is not None:
                raise RuntimeError("the triage service did not start")
            await asyncio.sleep(0.1)
        rss = Rss(proc.pid)
        rss_start = rss.now()
        start = datetime.now(UTC)

        events = [storm_alert(i, start) for i in range(storm)]
        cpu0 = cpu_by_role(proc.pid, home)
        published, drained = await triage_hop(js, events, rss)
        cpu1 = cpu_by_role(proc.pid, home)
        async with store.connection(db_url) as conn:
            incidents = await conn.fetchval("SELECT count(*) FROM incidents")
            decisions = dict(await conn.fetch("SELECT decision, count(*) FROM alert_observations GROUP BY 1"))
            hinted = await conn.fetchval("SELECT count(*) FROM alert_observations WHERE 'llm_hint' = ANY(rules)")
            ledger = await conn.fetchval("SELECT to_regclass('llm_calls') IS NOT NULL")
            calls = await conn.fetchval("SELECT count(*) FROM llm_calls") if ledger else 0
        storm_peak, storm_end = max(rss.samples or [0]), rss.now()

        _, d_drained = await triage_hop(js, [distinct_alert(i, start) for i in range(distinct)], rss)
        async with store.connection(db_url) as conn:
            opened = await conn.fetchval("SELECT count(*) FROM incidents") - incidents
        await nc.drain()

        storm_rate = storm / drained
        mb = 1024 * 1024
        print(f"\nraw nats-py hop (publish + pull consume + ack, {raw} msgs): {raw_rate:,.0f} msgs/s")
        print(f"storm: {storm} alerts of one group -> {incidents} incident(s); decisions {decisions}; "
              f"model calls {calls} (hinted decisions {hinted})")  # fmt: skip
        print(
            f"  published in {published:.2f}s, drained in {drained:.2f}s ({drained - published:.2f}s after the "
            f"last publish): {storm_rate:,.0f} alerts/s = {100 * storm_rate / raw_rate:.0f}% of the raw hop"
        )
        per = {k: 1e6 * (cpu1[k] - cpu0[k]) / storm for k in cpu0}
        print("  CPU per alert: " + ", ".join(f"{k} {v:,.0f} µs" for k, v in per.items()))
        print(f"  triage RSS: start {rss_start / mb:.0f} MB, peak {storm_peak / mb:.0f} MB, end {storm_end / mb:.0f} MB"
              f" (peak over both runs {max(rss.samples) / mb:.0f} MB)")  # fmt: skip
        print(
            f"distinct: {distinct} alerts of {distinct} services -> {opened} incidents in {d_drained:.2f}s: "
            f"{opened / d_drained:,.0f} incidents/s ({100 * distinct / d_drained / raw_rate:.0f}% of the raw hop)"
        )
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), timeout=15)
        await asyncio.to_thread(embedded.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=1_000)
    parser.add_argument("--raw", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.storm, args.distinct, args.raw))

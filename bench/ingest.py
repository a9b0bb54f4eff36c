"""Benchmark: signed GitHub deliveries at the running ingest over loopback, next to raw JetStream publishing.

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 64] [--workers 1]

Starts embedded NATS and Postgres (or uses NATS_URL / DATABASE_URL), sets up the bus, migrates, starts the ingest
service as its own process (`python -m services.ingest`), and drives `check_run` failure deliveries (each with its own
X-GitHub-Delivery, so each is a new alert: verify, normalize, claim, publish with PubAck, mark) over keep-alive
HTTP/1.1 connections from a minimal asyncio client. Prints accepted webhooks/s, latency to durable ack (p50/p99),
then the raw nats-py JetStream publish rate (awaited PubAcks, same concurrency, same message size) and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import nats
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pagerpatch.kernel import bus, store  # noqa: E402
from pagerpatch.ops.embedded import EmbeddedNats, EmbeddedPostgres, free_port  # noqa: E402
from pagerpatch.settings import BusSettings  # noqa: E402

SECRET = "bench-secret"
FIXTURE = ROOT / "tests" / "fixtures" / "providers" / "github_check_run_completed_failure.json"
BENCH_STREAM, BENCH_SUBJECT = "PAGERPATCH_BENCH", "pagerpatch-bench.publish"
DONE = {"all": 0}  # every answered request, warm-up included (for CPU per webhook)


def _body() -> bytes:
    """A real GitHub check_run delivery (the repository's copy of the provider's published example)."""
    return FIXTURE.read_bytes()


def _request(port: int, body: bytes, signature: str) -> bytes:
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: check_run\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def drive(port: int, seconds: float, connections: int, warmup: float) -> tuple[int, int, list[float], float]:
    body = _body()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0}
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                writer.write(_request(port, body, signature))
                status = await _read_response(reader)
                t1 = time.perf_counter()
                DONE["all"] += 1
                if t0 >= measure_from:
                    latencies.append(t1 - t0)
                    counts["ok" if status == 202 else "bad"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return counts["ok"], counts["bad"], latencies, seconds


async def raw_publish_rate(nats_url: str, size: int, seconds: float, concurrency: int) -> float:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    from nats.js.api import StorageType, StreamConfig

    await js.add_stream(StreamConfig(name=BENCH_STREAM, subjects=[BENCH_SUBJECT], storage=StorageType.FILE,
                                     duplicate_window=120))  # fmt: skip
    payload = os.urandom(size // 2).hex().encode()[:size]
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await js.publish(BENCH_SUBJECT, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    await js.delete_stream(BENCH_STREAM)
    await nc.drain()
    return done / elapsed


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else float("nan")


async def main(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="pagerpatch-bench-ingest-"))
    servers: list[EmbeddedNats | EmbeddedPostgres] = []
    nats_url, db_url = os.environ.get("NATS_URL"), os.environ.get("DATABASE_URL")
    if not nats_url:
        servers.append(EmbeddedNats(home))
        nats_url = servers[-1].start()
    if not db_url:
        servers.append(EmbeddedPostgres(home))
        db_url = servers[-1].start()
    ingest_procs: list[subprocess.Popen[bytes]] = []
    try:
        await bus.setup_url(nats_url, BusSettings())
        await store.migrate(db_url)
        port = free_port()
        env = {**os.environ, "NATS_URL": nats_url, "DATABASE_URL": db_url, "PAGERPATCH_HOME": str(home),
               "PAGERPATCH_INGEST_PORT": str(port), "PAGERPATCH_GITHUB_WEBHOOK_SECRET": SECRET,
               "PAGERPATCH_LOG_LEVEL": "WARNING"}  # fmt: skip
        ingest_procs = [
            subprocess.Popen([sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env)  # noqa: ASYNC220
            for _ in range(args.workers)
        ]
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("ingest did not become ready")
                await asyncio.sleep(0.2)
        procs = [psutil.Process(p.pid) for p in ingest_procs]
        cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        ok, bad, lat, secs = await drive(port, args.seconds, args.connections, warmup=2.0)
        total = DONE["all"]
        cpu = sum(p.cpu_times().user + p.cpu_times().system for p in procs) - cpu0
        rate = ok / secs
        print(f"ingest   : {rate:8.0f} accepted webhooks/s over {secs:.0f}s, {args.connections} connections "
              f"({ok} accepted, {bad} not 202)")  # fmt: skip
        print(f"latency  : p50 {pct(lat, 0.50):.1f} ms   p99 {pct(lat, 0.99):.1f} ms   max {pct(lat, 1.0):.1f} ms  "
              f"(request sent -> 202 after the PubAck)")  # fmt: skip
        for p in ingest_procs:
            p.terminate()
            p.wait(10)
        ingest_procs = []
        raw = await raw_publish_rate(nats_url, 17_000, args.seconds / 2, args.connections)
        print(f"ingest cpu: {cpu / max(total, 1) * 1e6:7.0f} µs of ingest-process CPU per webhook "
              f"({len(procs)} process(es), warm-up included)")  # fmt: skip
        print(f"raw      : {raw:8.0f} JetStream publishes/s (nats-py, awaited PubAck, 17 kB, same concurrency)")
        print(f"ratio    : {rate / raw:8.2f} (ingest / raw publish)   goal: >= 2000/s and p99 < 25 ms on 2 cores")
        load = os.getloadavg()[0]
        print(f"machine  : {os.cpu_count()} cores, load average {load:.1f} at the end (other work competes for CPU); "
              f"median latency {statistics.median(lat) * 1000:.1f} ms")  # fmt: skip
    finally:
        for p in ingest_procs:
            p.terminate()
            p.wait(10)
        for s in reversed(servers):
            s.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="ingest processes sharing the port (SO_REUSEPORT)")
    asyncio.run(main(parser.parse_args()))

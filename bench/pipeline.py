"""Benchmark: the demo's alert -> pull request wall time, and the platform's own share of it.

    .venv/bin/python bench/pipeline.py [--runs 5]

Starts the embedded stack once (`pagerpatch up` in-process), then sends the demo alert N times (each run on
its own copy of the demo repository, as its own service so runs are not deduplicated) and prints, per run and
as medians: total alert->PR time, time spent in the repository's tests (from fix.validated), and the rest
(the platform's share: ingest, bus hops, triage, git, review, push).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pagerpatch.git import repos
from pagerpatch.kernel import store
from pagerpatch.ops.demo_repo import build_demo_repo, demo_alert
from pagerpatch.ops.runner import Stack
from pagerpatch.settings import RepoConfig, Settings


async def one_run(stack: Stack, home: Path, i: int) -> tuple[float, float]:
    demo = await asyncio.to_thread(build_demo_repo, home / "bench" / f"shopcart-{i}")
    service = f"checkout-bench-{i}"
    async with store.connection(stack.embedded.database_url) as conn:
        await repos.register(conn, RepoConfig(name=f"bench-{i}", path=str(demo.path), services=[service]))
        alert = demo_alert(demo) | {"service": service}
        t0 = time.monotonic()
        async with httpx.AsyncClient() as client:
            resp = await client.post(f"{stack.ingest_url}/webhooks/generic", json=alert, timeout=30)
        resp.raise_for_status()
        incident = uuid.uuid5(uuid.UUID(resp.json()["event_id"]), "triage:incident")
        while True:
            state = await conn.fetchval("SELECT state FROM incidents WHERE id = $1", incident)
            if state == "pr_opened":
                break
            if state in {"failed", "rejected"} or time.monotonic() - t0 > 120:
                raise RuntimeError(f"run {i}: incident ended in {state}")
            await asyncio.sleep(0.02)
        total = time.monotonic() - t0
        tests = await conn.fetchval(
            """SELECT (outputs->0->>'data')::jsonb->'payload'->'tests'->>'duration_s' FROM checkpoints
               WHERE incident_id = $1 AND stage = 'fixgen'""",
            incident,
        )
    return total, float(tests or 0.0)


async def main(runs: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="pagerpatch-bench-"))
    settings = Settings(home=home, ingest_port=0)
    stack = Stack(settings)
    t0 = time.monotonic()
    await stack.start()
    up_s = time.monotonic() - t0
    try:
        results = [await one_run(stack, home, i) for i in range(runs)]
    finally:
        await stack.stop()
    print(f"\npagerpatch up (embedded NATS + Postgres + 6 services, ready): {up_s:.2f}s")
    print(f"{'run':>4} {'alert->PR s':>12} {'tests s':>8} {'platform s':>11}")
    for i, (total, tests) in enumerate(results):
        print(f"{i:>4} {total:>12.3f} {tests:>8.3f} {total - tests:>11.3f}")
    med_total = statistics.median(r[0] for r in results)
    med_platform = statistics.median(r[0] - r[1] for r in results)
    print(f"median alert->PR {med_total:.3f}s; platform's own share {med_platform:.3f}s "
          f"({100 * med_platform / med_total:.0f}%) over {runs} runs")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))

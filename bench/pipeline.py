"""Benchmark: the demo's alert -> pull request wall time, and the platform's own share of it, per fix strategy.

    .venv/bin/python bench/pipeline.py [--runs 5] [--strategy both|revert|model-patch]

Starts the embedded stack (`pagerpatch up` in-process), then sends the demo alert N times (each run on its own
copy of the demo repository, as its own service so runs are not deduplicated) and prints, per run and as medians:
total alert->PR time, time spent in the repository's tests (the run with the fix, from fix.validated), and the rest
(the platform's share: ingest, bus hops, triage, git, baseline and reproduction runs, review, push).

- `revert`: the demo as shipped; reverting the bad commit is proved, no model is configured.
- `model-patch`: a later commit comments the bad lines, so the revert conflicts and the fix agent writes the patch.
  The model is a scripted fake Messages API (tests/support/fake_anthropic.py) answering at once, so the model's
  own latency is not in the figures: what is left is the platform's work around it (the prompt, the proposal,
  `git apply --check`, the regression test at the base and with the fix, the suite). Its stack is a second one,
  with `ANTHROPIC_API_KEY`/`PAGERPATCH_LLM__BASE_URL` pointing at the fake; other agents get a 400 and fall back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pagerpatch.git import repos
from pagerpatch.git.workspace import git
from pagerpatch.kernel import store
from pagerpatch.ops.demo_repo import DemoRepo, build_demo_repo, demo_alert
from pagerpatch.ops.runner import Stack
from pagerpatch.settings import RepoConfig, Settings
from tests.support.fake_anthropic import FakeAnthropic, Reply, error, tool_use

PRICING = "shopcart/pricing.py"
BAD_LINES = "    coupon = COUPONS[normalize_code(code)]\n    if not coupon.is_active(today):\n"
COMMENTED = "    coupon = COUPONS[normalize_code(code)]  # exact match\n    if not coupon.is_active(today):\n"
FIXED = "    coupon = COUPONS.get(normalize_code(code))\n    if coupon is None or not coupon.is_active(today):\n"
REGRESSION = (
    "from datetime import date\n\nimport pytest\n\nfrom shopcart.pricing import InvalidCouponError, find_coupon\n\n\n"
    "def test_an_unknown_coupon_is_invalid_not_a_crash():\n    with pytest.raises(InvalidCouponError):\n"
    '        find_coupon("SUMMER24", today=date(2024, 6, 5))\n'
)
PROPOSAL = {
    "summary": "An unknown coupon code is an InvalidCouponError again, not a KeyError",
    "edits": [{"path": PRICING, "old": COMMENTED, "new": FIXED}],
    "regression_test": {"path": "tests/test_unknown_coupon_regression.py", "content": REGRESSION},
}


def scripted(body: dict[str, Any]) -> Reply:
    """The fix agent answers with the patch at once; any other agent is refused (and falls back to its rules)."""
    if any(tool.get("name") == "emit_fix_proposal" for tool in body.get("tools") or []):
        return tool_use("emit_fix_proposal", PROPOSAL)
    return error(400, "invalid_request_error", "bench: only the fix agent is scripted")


def make_revert_conflict(demo: DemoRepo) -> None:
    """A later commit that only comments the bad lines: the bug stays, reverting the bad commit conflicts."""
    path = demo.path / PRICING
    text = path.read_text()
    assert text.count(BAD_LINES) == 1, "the demo's pricing.py drifted"
    path.write_text(text.replace(BAD_LINES, COMMENTED))
    ident = ("-c", "user.name=Bench", "-c", "user.email=bench@example.com")
    git(demo.path, "add", PRICING)
    git(demo.path, *ident, "commit", "-q", "-m", "pricing: note the exact-match lookup")


async def one_run(stack: Stack, home: Path, tag: str, i: int, conflict: bool) -> tuple[float, float, str, str]:
    demo = await asyncio.to_thread(build_demo_repo, home / "bench" / f"shopcart-{tag}-{i}")
    head = demo.head
    if conflict:
        await asyncio.to_thread(make_revert_conflict, demo)
        head = git(demo.path, "rev-parse", "HEAD").strip()
    service = f"checkout-bench-{tag}-{i}"
    async with store.connection(stack.embedded.database_url) as conn:
        await repos.register(conn, RepoConfig(name=f"bench-{tag}-{i}", path=str(demo.path), services=[service]))
        alert = demo_alert(demo) | {"service": service, "commit": head}
        t0 = time.monotonic()
        async with httpx.AsyncClient() as client:
            resp = await client.post(f"{stack.ingest_url}/webhooks/generic", json=alert, timeout=30)
        resp.raise_for_status()
        incident = uuid.uuid5(uuid.UUID(resp.json()["event_id"]), "triage:incident")
        while True:
            state = await conn.fetchval("SELECT state FROM incidents WHERE id = $1", incident)
            if state in {"pr_opened", "awaiting_approval"}:
                break
            if state in {"failed", "rejected"} or time.monotonic() - t0 > 300:
                raise RuntimeError(f"run {tag}-{i}: incident ended in {state}")
            await asyncio.sleep(0.02)
        total = time.monotonic() - t0
        fix = await conn.fetchval(
            """SELECT (outputs->0->>'data')::jsonb->'payload' FROM checkpoints
               WHERE incident_id = $1 AND stage = 'fixgen'""",
            incident,
        )
    payload = fix if isinstance(fix, dict) else json.loads(fix or "{}")
    tests = float((payload.get("tests") or {}).get("duration_s") or 0.0)
    return total, tests, str(payload.get("strategy")), state


@contextmanager
def model_env(url: str) -> Iterator[None]:
    """The services the stack starts inherit these: a configured model at the fake server."""
    saved = {k: os.environ.get(k) for k in ("ANTHROPIC_API_KEY", "PAGERPATCH_LLM__BASE_URL")}
    os.environ.update({"ANTHROPIC_API_KEY": "sk-ant-bench-000000000000", "PAGERPATCH_LLM__BASE_URL": url})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def strategy_runs(runs: int, tag: str, conflict: bool) -> tuple[float, list[tuple[float, float, str, str]]]:
    home = Path(tempfile.mkdtemp(prefix=f"pagerpatch-bench-{tag}-"))
    stack = Stack(Settings(home=home, ingest_port=0))
    t0 = time.monotonic()
    await stack.start()
    up_s = time.monotonic() - t0
    try:
        return up_s, [await one_run(stack, home, tag, i, conflict) for i in range(runs)]
    finally:
        await stack.stop()


def report(name: str, up_s: float, results: list[tuple[float, float, str, str]]) -> None:
    print(f"\n== {name}: pagerpatch up (embedded NATS + Postgres + services, ready) {up_s:.2f}s")
    print(f"{'run':>4} {'alert->PR s':>12} {'tests s':>8} {'platform s':>11}  strategy / state")
    for i, (total, tests, strategy, state) in enumerate(results):
        print(f"{i:>4} {total:>12.3f} {tests:>8.3f} {total - tests:>11.3f}  {strategy} / {state}")
    med_total = statistics.median(r[0] for r in results)
    med_platform = statistics.median(r[0] - r[1] for r in results)
    print(f"{name}: median alert->PR {med_total:.3f}s; platform's own share {med_platform:.3f}s "
          f"({100 * med_platform / med_total:.0f}%) over {len(results)} runs")  # fmt: skip


async def main(runs: int, strategy: str) -> None:
    if strategy in ("both", "revert"):
        up_s, results = await strategy_runs(runs, "revert", conflict=False)
        report("revert-and-test", up_s, results)
    if strategy in ("both", "model-patch"):
        fake = FakeAnthropic().always(scripted).start()
        try:
            with model_env(fake.url):
                up_s, results = await strategy_runs(runs, "model", conflict=True)
        finally:
            fake.stop()
        report("model-patch (scripted model)", up_s, results)
        fixes = sum(1 for r in fake.requests if "emit_fix_proposal" in r.text)
        print(f"model requests: {len(fake.requests)} ({fixes} to the fix agent)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--strategy", choices=("both", "revert", "model-patch"), default="both")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.strategy))

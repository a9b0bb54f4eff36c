"""`pagerpatch demo`: a real regression in a real repository, its alert, and the pull request that fixes it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from typing import Any

import httpx

from pagerpatch.git import repos
from pagerpatch.incidents import IncidentRepository
from pagerpatch.kernel import store
from pagerpatch.ops import endpoints, webhooks
from pagerpatch.ops.demo_repo import build_demo_repo, demo_alert
from pagerpatch.ops.runner import Stack
from pagerpatch.settings import RepoConfig, Settings

DEMO_REPO = "demo-shopcart"
DONE_STATES = {"pr_opened", "failed", "rejected", "awaiting_approval"}


def _say(text: str = "") -> None:
    print(text, flush=True)


async def run_demo(settings: Settings, *, timeout_s: float = 180.0) -> int:
    """Returns the process exit code: 0 only when the pipeline reached a pull request."""
    live = endpoints.running(settings.state_dir)
    stack: Stack | None = None
    if live is None and not (settings.nats_url and settings.database_url and _ingest_answers(settings)):
        _say("== starting the embedded stack (it is stopped again at the end)")
        stack = Stack(settings.model_copy(update={"ingest_port": 0}))
        try:
            ep = await stack.start()
        except Exception as exc:
            _say(f"could not start pagerpatch: {exc}")
            await stack.stop()
            return 1
    else:
        ep = live or endpoints.resolve(settings)
    try:
        return await _scenario(settings, ep, timeout_s)
    finally:
        if stack is not None:
            await stack.stop()


def _ingest_answers(settings: Settings) -> bool:
    try:
        return httpx.get(f"http://{settings.ingest_host}:{settings.ingest_port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _scenario(settings: Settings, ep: endpoints.Endpoints, timeout_s: float) -> int:
    dest = settings.state_dir / "demo" / "shopcart"
    if dest.exists():
        shutil.rmtree(dest)
    _say(f"== building the demo repository at {dest}")
    demo = await asyncio.to_thread(build_demo_repo, dest)
    for c in demo.commits:
        marker = "  <- the regression" if c.sha == demo.bad_commit else ""
        _say(f"   {c.sha[:10]} {c.subject}{marker}")
    repo = RepoConfig(name=DEMO_REPO, path=str(dest), services=["checkout"], test_command="python -m pytest -q")
    async with store.connection(ep.database_url) as conn:
        await repos.register(conn, repo)
    _say(f"== registered repository {DEMO_REPO!r} for service 'checkout'")
    # A run of its own: the same regression, but not a repeat of an earlier run's incident (still open).
    run = uuid.uuid4().hex[:12]
    alert = demo_alert(demo, run=run)
    _say(f"== production alert: {alert['title']}")
    _say("   " + demo.trigger().traceback.strip().splitlines()[-1])
    body = json.dumps(alert).encode()
    headers = {"content-type": "application/json", "x-pagerpatch-delivery": f"demo-{run}",
               **webhooks.generic_signature_headers(settings, body)}  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(f"{ep.ingest_url}/webhooks/generic", content=body, headers=headers)
    if resp.status_code != 202:
        _say(f"ingest refused the alert: {resp.status_code} {resp.text}")
        return 1
    event_id = uuid.UUID(resp.json()["event_id"])
    _say(f"   accepted by ingest (202), event {event_id}")
    return await _follow(ep, event_id, timeout_s, demo.bad_commit)


async def _follow(ep: endpoints.Endpoints, alert_event: uuid.UUID, timeout_s: float, bad_commit: str) -> int:
    incident_id = uuid.uuid5(alert_event, "triage:incident")
    deadline = time.monotonic() + timeout_s
    shown: set[Any] = set()
    started = time.monotonic()
    async with store.connection(ep.database_url) as conn:
        state = ""
        while time.monotonic() < deadline:
            for e in await IncidentRepository(conn).timeline(incident_id):
                if e["event_id"] not in shown:
                    shown.add(e["event_id"])
                    _say(f"   +{time.monotonic() - started:5.1f}s  {e['type']:<20} {e['summary'][:90]}")
            inc = await IncidentRepository(conn).get(incident_id)
            state = inc.state if inc else ""
            if state in DONE_STATES:
                break
            await asyncio.sleep(0.3)
        if state != "pr_opened":
            _say(f"== the pipeline did not reach a pull request (incident {incident_id} state: {state or 'none'})")
            if state == "awaiting_approval":
                _say(f"   it waits for a human: pagerpatch approve {incident_id}")
            return 1
        pr = await conn.fetchrow("SELECT * FROM pull_requests WHERE incident_id = $1", incident_id)
    remote = pr["url"].removeprefix("file://").split("?")[0]
    show = ["git", "--git-dir", remote, "show", "--stat", "--patch", "--format=%h %s%n%n%b", pr["branch"]]
    done = await asyncio.to_thread(subprocess.run, show, capture_output=True, text=True, check=False)
    diff = done.stdout
    _say(f"\n== pull request ready in {time.monotonic() - started:.1f}s: {pr['title']}")
    _say(f"   branch  {pr['branch']}  ({pr['head_commit'][:12]})")
    _say(f"   remote  {remote}")
    _say(f"   reverts {bad_commit[:12]} (the regression)")
    _say("\n" + pr["body"])
    _say("\n== diff\n" + diff)
    _say(f"look at it: git --git-dir {remote} log -p {pr['branch']}")
    _say(f"            pagerpatch incidents show {incident_id}")
    return 0

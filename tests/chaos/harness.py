"""The chaos driver: N incidents on the demo scenario through `pagerpatch up` while services are SIGKILLed and
Postgres and NATS go away for T seconds; then what was lost, doubled or dead-lettered, and how fast it recovered.

Used by tests/chaos (a bounded run) and bench/chaos.py (the long one). NATS and Postgres are our own servers
passed to `up` as external URLs (so an outage lasts exactly T seconds; `up`'s watchdog would restart embedded
ones at once), unless `embedded=True`, where the embedded ones are SIGKILLed and the watchdog brings them back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil

from pagerpatch.kernel import store
from pagerpatch.ops.demo_repo import build_demo_repo, demo_alert
from pagerpatch.ops.embedded import EmbeddedNats, EmbeddedPostgres
from pagerpatch.ops.embedded_proc import read_pid
from schemas import streams
from tests.e2e.system import System, start, stop

TERMINAL = {"pr_opened", "failed", "rejected", "closed", "resolved"}
# The events each stage publishes once per incident on the demo scenario's way to a pull request.
STAGE_EVENTS = ("incident.opened", "diagnosis.ready", "fix.validated", "fix.approved", "pr.opened")
LAST_LOG = Path(tempfile.gettempdir()) / "pagerpatch-chaos-last-up.log"
SERVICES = ("ingest", "triage", "diagnosis", "fixgen", "review", "notifier")


@dataclass(frozen=True)
class Plan:
    incidents: int = 6
    rate_per_s: float = 6.0
    outage_s: float = 3.0
    kills: int = 2
    outages: tuple[str, ...] = ("postgres", "nats")  # in this order, one after the other
    embedded: bool = False
    settle_s: float = 1.5  # before the first fault: let the flow start
    deadline_s: float = 120.0  # every incident terminal by then (from the first alert)
    seed: int = 16


@dataclass
class Figures:
    plan: Plan
    accepted: int = 0
    answered_503: int = 0
    connection_errors: int = 0
    server_errors: list[str] = field(default_factory=list)  # answers other than 2xx/503 (should be none)
    incidents: int = 0
    states: collections.Counter[str] = field(default_factory=collections.Counter)
    pr_records: int = 0
    pr_records_pushing: int = 0
    branches: int = 0
    stage_events: dict[str, collections.Counter[int]] = field(default_factory=dict)  # type -> {copies: incidents}
    dead_letters: int = 0
    recover_s: dict[str, float | None] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    drained_s: float = 0.0

    def lines(self) -> list[str]:
        copies = {t: dict(sorted(c.items())) for t, c in self.stage_events.items()}
        recovery = {k: (f"{v:.1f}s" if v is not None else "n/a") for k, v in self.recover_s.items()}
        return [
            f"plan: {self.plan}",
            f"faults: {', '.join(self.faults) or 'none'}",
            f"deliveries accepted {self.accepted}/{self.plan.incidents} (503s retried: {self.answered_503}, "
            f"connection errors retried: {self.connection_errors}; other 5xx: {self.server_errors or 'none'})",
            f"incidents {self.incidents}; states {dict(self.states)}",
            f"pull request records {self.pr_records} (still 'pushing': {self.pr_records_pushing}); "
            f"branches {self.branches}",
            f"stage events per incident (copies: incidents) {copies}",
            f"dead letters {self.dead_letters}",
            f"recovery after each restart {recovery}",
            f"all terminal {self.drained_s:.1f}s after the first alert",
        ]


class Chaos:
    """One chaos run: servers, `pagerpatch up`, the driver, the faults, the figures."""

    def __init__(self, plan: Plan, say: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.say = say
        self.home = Path(tempfile.mkdtemp(prefix="pagerpatch-chaos-"))
        self.rng = random.Random(plan.seed)
        self.nats: EmbeddedNats | None = None
        self.pg: EmbeddedPostgres | None = None
        self.system: System | None = None
        self.figures = Figures(plan)
        self.restarted_at: dict[str, datetime] = {}

    # ------------------------------------------------------------ set-up

    def start(self) -> None:
        self.demo = build_demo_repo(self.home / "repos" / "shopcart")
        env: dict[str, str] = {}
        if not self.plan.embedded:
            self.nats = EmbeddedNats(self.home / "ext-nats")
            self.pg = EmbeddedPostgres(self.home / "ext-pg")
            env = {"NATS_URL": self.nats.start(), "DATABASE_URL": self.pg.start()}
        config = {
            "telemetry": {"exporter": "none"},
            "bus": {"retry_base_s": 0.5, "consumers": {"*": {"ack_wait_s": 4}}},
        }
        self.system = start(self.home, config, env, timeout=90)
        self.system.cli("repos", "add", "demo-shopcart", "--path", str(self.demo.path), "--service", "checkout")

    def close(self) -> list[int]:
        alive: list[int] = []
        if self.system is not None:
            alive = stop(self.system)
        for server in (self.nats, self.pg):
            if server is not None:
                server.stop()
        if self.system is not None and self.system.log_path.exists():
            shutil.copy(self.system.log_path, LAST_LOG)  # `up`'s log of the last run, for a look afterwards
        shutil.rmtree(self.home, ignore_errors=True)
        return alive

    async def ingest_recovery_s(self, timeout_s: float = 30.0) -> float:
        """SIGKILL ingest (after a healthy run) and time until its /readyz says ready again."""
        assert self.system is not None
        victim = next(p for p in psutil.Process(self.system.proc.pid).children(recursive=True)
                      if "services.ingest" in " ".join(p.cmdline()))  # fmt: skip
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        self.figures.faults.append("SIGKILL ingest (timed)")
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() - killed < timeout_s:
                try:
                    resp = await client.get(f"{self.system.ingest_url}/readyz")
                    if resp.status_code == 200 and victim.pid != self._ingest_pid():
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        took = time.monotonic() - killed
        self.figures.recover_s["ingest after SIGKILL"] = took
        return took

    def _ingest_pid(self) -> int | None:
        assert self.system is not None
        for proc in psutil.Process(self.system.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "services.ingest" in " ".join(proc.cmdline()):
                    return int(proc.pid)
        return None

    # ------------------------------------------------------------ the run

    async def run(self) -> Figures:
        assert self.system is not None
        started = time.monotonic()
        driver = asyncio.create_task(self._drive())
        await asyncio.sleep(self.plan.settle_s)
        await self._faults()
        event_ids = await driver
        incidents = [uuid.uuid5(e, "triage:incident") for e in event_ids]
        await self._until_terminal(incidents, started)
        self.figures.drained_s = time.monotonic() - started
        await self._count(incidents)
        return self.figures

    async def _drive(self) -> list[uuid.UUID]:
        """Post every alert like a provider would: retried on 503 and connection errors until accepted."""
        assert self.system is not None
        url = f"{self.system.ingest_url}/webhooks/generic"
        ids: list[uuid.UUID] = []

        async def deliver(client: httpx.AsyncClient, i: int) -> uuid.UUID:
            body = demo_alert(self.demo, run=f"chaos-{self.plan.seed}-{i}")
            headers = {"x-pagerpatch-delivery": f"chaos-{self.plan.seed}-{i}"}
            while True:
                try:
                    resp = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError:
                    self.figures.connection_errors += 1
                    await asyncio.sleep(0.5)
                    continue
                if resp.status_code == 503:
                    self.figures.answered_503 += 1
                    await asyncio.sleep(0.5)
                    continue
                if resp.status_code >= 500:  # a bug, not an outage: counted (and retried, as a provider would)
                    self.figures.server_errors.append(f"{resp.status_code} {resp.text[:200]}")
                    await asyncio.sleep(0.5)
                    continue
                assert resp.status_code in (200, 202), f"{resp.status_code} {resp.text}"
                self.figures.accepted += 1
                return uuid.UUID(resp.json()["event_id"])

        async with httpx.AsyncClient(timeout=10) as client:
            tasks = []
            for i in range(self.plan.incidents):
                tasks.append(asyncio.create_task(deliver(client, i)))
                await asyncio.sleep(1.0 / self.plan.rate_per_s)
            ids = list(await asyncio.gather(*tasks))
        return ids

    async def _faults(self) -> None:
        kills = self.plan.kills
        for server in self.plan.outages:
            if kills:
                self._kill_service()
                kills -= 1
            await self._outage(server)
        for _ in range(kills):
            self._kill_service()
            await asyncio.sleep(1.0)

    def _kill_service(self) -> None:
        assert self.system is not None
        name = self.rng.choice(SERVICES)
        for proc in psutil.Process(self.system.proc.pid).children(recursive=True):
            try:
                if f"services.{name}" in " ".join(proc.cmdline()):
                    proc.send_signal(signal.SIGKILL)
                    self.figures.faults.append(f"SIGKILL {name}")
                    self.say(f"chaos: SIGKILL {name} (pid {proc.pid})")
                    return
            except psutil.Error:
                continue

    async def _outage(self, server: str) -> None:
        """`postgres`, `nats` or `both` away for T seconds (embedded: SIGKILLed, and back when the watchdog says)."""
        names = ("postgres", "nats") if server == "both" else (server,)
        if self.plan.embedded:
            for name in names:
                self._kill_embedded(name)
            await asyncio.sleep(self.plan.outage_s)
            return
        targets = [self.pg if name == "postgres" else self.nats for name in names]
        self.say(f"chaos: {server} down for {self.plan.outage_s:.0f}s")
        for target in targets:
            assert target is not None
            await asyncio.to_thread(target.stop)
        await asyncio.sleep(self.plan.outage_s)
        for name, target in zip(names, targets, strict=True):
            assert target is not None
            await asyncio.to_thread(target.restart)
            self.restarted_at[name] = datetime.now(UTC)
        self.figures.faults.append(f"{server} down {self.plan.outage_s:.0f}s")
        self.say(f"chaos: {server} back")

    def _kill_embedded(self, server: str) -> None:
        """SIGKILL the embedded server `up` runs; its watchdog restarts it on the same port."""
        pid_file = self.home / ("nats/nats-server.pid" if server == "nats" else "postgres/data/postmaster.pid")
        pid = read_pid(pid_file)
        if pid is None:
            return
        psutil.Process(pid).send_signal(signal.SIGKILL)
        self.restarted_at[server] = datetime.now(UTC)
        self.figures.faults.append(f"SIGKILL embedded {server}")
        self.say(f"chaos: SIGKILL embedded {server} (pid {pid})")

    async def _until_terminal(self, incidents: list[uuid.UUID], started: float) -> None:
        assert self.system is not None
        states: dict[uuid.UUID, str] = {}
        while time.monotonic() - started < self.plan.deadline_s:
            try:
                async with store.connection(self.system.database_url) as conn:
                    rows = await conn.fetch("SELECT id, state FROM incidents WHERE id = ANY($1)", incidents)
                states = {r["id"]: r["state"] for r in rows}
            except OSError:
                pass
            if len(states) == len(incidents) and all(s in TERMINAL for s in states.values()):
                return
            await asyncio.sleep(0.5)
        self.figures.states = collections.Counter(states.values())

    async def _count(self, incidents: list[uuid.UUID]) -> None:
        assert self.system is not None
        f = self.figures
        async with store.connection(self.system.database_url) as conn:
            rows = await conn.fetch("SELECT id, state FROM incidents WHERE id = ANY($1)", incidents)
            f.incidents = len(rows)
            f.states = collections.Counter(r["state"] for r in rows)
            prs = await conn.fetch("SELECT state, url FROM pull_requests WHERE incident_id = ANY($1)", incidents)
            f.pr_records = len(prs)
            f.pr_records_pushing = sum(r["state"] == "pushing" for r in prs)
            f.dead_letters = await conn.fetchval("SELECT count(*) FROM dead_letters")
            for name, at in self.restarted_at.items():
                first = await conn.fetchval(
                    "SELECT min(finished_at) FROM checkpoints WHERE status = 'done' AND finished_at > $1", at
                )
                f.recover_s[name] = (first - at).total_seconds() if first else None
        f.branches = self._branches({r["url"] for r in prs if r["url"]})
        f.stage_events = await self._stage_events({str(i) for i in incidents})

    @staticmethod
    def _branches(urls: set[str]) -> int:
        remotes = {u.removeprefix("file://").split("?")[0] for u in urls}
        count = 0
        for remote in remotes:
            refs = subprocess.run(["git", "--git-dir", remote, "for-each-ref", "--format=%(refname)",
                                   "refs/heads/pagerpatch/"], capture_output=True, text=True, check=False)  # fmt: skip
            count += len(refs.stdout.split())
        return count

    async def _stage_events(self, incidents: set[str]) -> dict[str, collections.Counter[int]]:
        assert self.system is not None
        per: collections.Counter[tuple[str, str]] = collections.Counter()
        nc = await nats.connect(self.system.nats_url)
        try:
            sub = await nc.jetstream().subscribe("pagerpatch.>", stream=streams.EVENTS_STREAM, ordered_consumer=True)
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    break
                try:
                    event: dict[str, Any] = json.loads(msg.data)
                except ValueError:
                    continue
                if event.get("type") in STAGE_EVENTS and event.get("incident_id") in incidents:
                    per[(event["type"], event["incident_id"])] += 1
        finally:
            await nc.drain()
        out: dict[str, collections.Counter[int]] = {t: collections.Counter() for t in STAGE_EVENTS}
        for (kind, _), copies in per.items():
            out[kind][copies] += 1
        return out

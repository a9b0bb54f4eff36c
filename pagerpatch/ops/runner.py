"""`pagerpatch up`: embedded servers if needed (kept alive by a watchdog), bus set-up, migrations, then the supervised
services.

Ingest's readiness is waited for by progress, not by a fixed clock: under load its start can take minutes, so `up`
keeps waiting while the process is alive and shows signs of life (log lines, CPU time, its port answering), fails
at once when it exits, and gives up after a generous cap, in each case with ingest's last log lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from pagerpatch.kernel import bus, store
from pagerpatch.ops import endpoints, webhooks
from pagerpatch.ops.embedded import EmbeddedStack, free_port
from pagerpatch.ops.supervisor import CONSOLE, SERVICES, Supervisor
from pagerpatch.ops.watchdog import ServerWatchdog
from pagerpatch.settings import Settings

log = logging.getLogger(__name__)

LOG_LINES_KEPT = 20  # ingest's last lines, quoted when it does not become ready


def _say(text: str) -> None:
    print(f"[pagerpatch] {text}", flush=True)


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class ReadinessPolicy:
    """How long `up` waits for ingest: `cap_s` in all, `stall_s` without any sign of progress."""

    cap_s: float = 180.0
    stall_s: float = 60.0
    poll_s: float = 0.2
    cpu_step_s: float = 0.05  # CPU time growing by this much counts as progress (imports, connecting)
    drain_s: float = 0.5  # after an exit, the time its last lines get to arrive through the supervisor's pipe


@dataclass(frozen=True)
class ProcessState:
    """The ingest process as the supervisor last saw it (pid None: not started yet)."""

    pid: int | None = None
    exit_code: int | None = None
    restarts: int = 0

    @property
    def exited(self) -> bool:
        return self.exit_code is not None or self.restarts > 0


@dataclass(frozen=True)
class Observation:
    ready: bool
    process: ProcessState
    waited_s: float
    idle_s: float  # since the last sign of progress


Verdict = Literal["ready", "wait", "exited", "cap", "stalled"]


def judge(seen: Observation, policy: ReadinessPolicy) -> Verdict:
    """Keep waiting while ingest is alive and moving; an exit fails at once, the cap and a stall fail late."""
    if seen.ready:
        return "ready"
    if seen.process.exited:
        return "exited"
    if seen.waited_s >= policy.cap_s:
        return "cap"
    if seen.idle_s >= policy.stall_s:
        return "stalled"
    return "wait"


def failure_message(verdict: Verdict, url: str, seen: Observation, last_answer: str | None, lines: list[str]) -> str:
    """Why ingest is not ready, with its last log lines (what a person needs to see what went wrong)."""
    head = f"ingest did not become ready at {url}/readyz"
    if verdict == "exited":
        code = seen.process.exit_code
        why = f"the process exited ({f'exit {code}' if code is not None else 'restarted'}) after {seen.waited_s:.1f}s"
    elif verdict == "cap":
        why = f"still not ready after {seen.waited_s:.0f}s"
    else:
        why = f"no progress for {seen.idle_s:.0f}s (no output, no CPU time, no new answer on its port)"
    answer = f"; /readyz last said: {last_answer}" if last_answer else "; its port never answered"
    tail = "\n  ".join(lines) if lines else "(it printed nothing)"
    return f"{head}: {why}{answer}\nlast lines of ingest:\n  {tail}"


def port_free(host: str, port: int) -> bool:
    """Whether `host:port` can be bound right now (nobody listens there)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from /proc (None where there is no /proc, or the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
    try:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError):
        return None


class LogTail:
    """Passes every supervisor line on and keeps the last lines of one service, counting all it said."""

    def __init__(self, service: str, write: Callable[[str], None] = _print, keep: int = LOG_LINES_KEPT) -> None:
        self.service = service
        self.write = write
        self.lines: deque[str] = deque(maxlen=keep)
        self.count = 0

    def __call__(self, line: str) -> None:
        self.write(line)
        name = line[1 : line.find("]")].strip() if line.startswith("[") and "]" in line else ""
        if name == self.service:
            self.lines.append(line)
            self.count += 1


async def probe_readyz(client: httpx.AsyncClient, url: str) -> tuple[bool, str | None]:
    """Whether /readyz says ready, and what it answered (None: the port does not answer yet)."""
    try:
        resp = await client.get(f"{url}/readyz")
    except httpx.HTTPError:
        return False, None
    return resp.status_code == 200, f"{resp.status_code} {resp.text.strip()[:300]}"


async def wait_until_ready(
    url: str,
    probe: Callable[[], Awaitable[tuple[bool, str | None]]],
    process: Callable[[], ProcessState],
    tail: LogTail,
    policy: ReadinessPolicy = ReadinessPolicy(),
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return once ingest is ready; raise RuntimeError (with its last lines) when it exits, stalls or hits the cap."""
    started = last_progress = clock()
    last_answer: str | None = None
    last_cpu: float | None = None
    lines_seen = tail.count
    while True:
        ready, answer = await probe()
        state = process()
        cpu = cpu_seconds(state.pid) if state.pid else None
        moved = answer is not None and answer != last_answer
        moved |= cpu is not None and (last_cpu is None or cpu - last_cpu >= policy.cpu_step_s)
        moved |= tail.count > lines_seen
        lines_seen = tail.count
        now = clock()
        if moved:
            last_progress = now
        last_answer = answer or last_answer
        last_cpu = cpu if cpu is not None and moved else last_cpu
        seen = Observation(ready, state, now - started, now - last_progress)
        verdict = judge(seen, policy)
        if verdict == "ready":
            return
        if verdict == "exited":
            await asyncio.sleep(policy.drain_s)
        if verdict != "wait":
            raise RuntimeError(failure_message(verdict, url, seen, last_answer, list(tail.lines)))
        await asyncio.sleep(policy.poll_s)


def ingest_state(supervisor: Supervisor) -> ProcessState:
    """The ingest child as the supervisor holds it."""
    child = next((c for c in supervisor.children if c.name == "ingest"), None)
    if child is None or child.proc is None:
        return ProcessState()
    return ProcessState(child.proc.pid, child.proc.returncode, child.restarts)


class Stack:
    """The whole system in this process tree; used by `up` and by `demo`."""

    def __init__(self, settings: Settings, services: list[str] | None = None, *, console: bool = False) -> None:
        unknown = set(services or []) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}; known: {', '.join(SERVICES)}")
        self.settings = settings
        self.services = services if services is not None else list(SERVICES)
        self.embedded = EmbeddedStack(settings.state_dir, settings.nats_url, settings.database_url)
        self.supervisor: Supervisor | None = None
        self.watchdog: ServerWatchdog | None = None
        self._watching: asyncio.Task[None] | None = None
        self.ingest_url = ""
        self.ingest_log = LogTail("ingest")
        self.console = console  # the web console (services/console) beside the pipeline: `up` starts it
        self.console_url = ""

    async def start(self, readiness: ReadinessPolicy = ReadinessPolicy()) -> endpoints.Endpoints:
        started = time.monotonic()
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.embedded.start)
        nats_url, db_url = self.embedded.nats_url, self.embedded.database_url
        _say(f"nats {nats_url}  postgres {db_url.split('@')[-1]}")
        embedded = {"nats-server": self.embedded.nats, "postgres": self.embedded.postgres}
        watched = {name: server for name, server in embedded.items() if server is not None}
        if watched:
            self.watchdog = ServerWatchdog(watched, _say)
            self._watching = asyncio.create_task(self.watchdog.run(), name="embedded-watchdog")
        report = await bus.setup_url(nats_url, self.settings.bus)
        _say(f"bus set up: {len(report.streams)} streams, {len(report.consumers)} consumers")
        applied = await store.migrate(db_url)
        _say(f"database migrated ({len(applied)} new migration(s))")
        port = self.settings.ingest_port
        if port == 0:
            port = free_port(self.settings.ingest_host)
        self.ingest_url = f"http://{self.settings.ingest_host}:{port}"
        env = {
            **os.environ,
            "NATS_URL": nats_url,
            "DATABASE_URL": db_url,
            "PAGERPATCH_HOME": str(self.settings.state_dir),
            "PAGERPATCH_INGEST_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
        opened = webhooks.local_open_providers(self.settings)
        if opened != list(self.settings.ingest.open_providers):
            env["PAGERPATCH_INGEST__OPEN_PROVIDERS"] = json.dumps(opened)
            _say("generic webhook open without a signature on loopback (set PAGERPATCH_GENERIC_WEBHOOK_SECRET to sign)")
        children = list(self.services)
        if self.console and self._console_env(env):
            children.append(CONSOLE)
        self.supervisor = supervisor = Supervisor(children, env, write=self.ingest_log)
        await supervisor.start()
        ep = endpoints.Endpoints(nats_url=nats_url, database_url=db_url, ingest_url=self.ingest_url, pid=os.getpid(),
                                 console_url=self.console_url)  # fmt: skip
        endpoints.write(self.settings.state_dir, ep)
        if "ingest" in self.services:
            async with httpx.AsyncClient(timeout=2) as client:
                await wait_until_ready(
                    self.ingest_url,
                    lambda: probe_readyz(client, self.ingest_url),
                    lambda: ingest_state(supervisor),
                    self.ingest_log,
                    readiness,
                )
        console = f", console at {self.console_url}" if self.console_url else ""
        took = time.monotonic() - started
        _say(f"up in {took:.1f}s — ingest at {self.ingest_url}{console} (Ctrl-C stops everything)")
        return ep

    def _console_env(self, env: dict[str, str]) -> bool:
        """Point the console at a port it can bind (the configured one, else a free one) and say where it is; False
        (not started, and why) when its settings refuse: bound off loopback without PAGERPATCH_CONSOLE_TOKEN."""
        cfg = self.settings.console
        problem = cfg.startup_problem()
        if problem:
            _say(f"console not started: {problem}")
            return False
        port = cfg.port if cfg.port and port_free(cfg.host, cfg.port) else free_port(cfg.host)
        if cfg.port and port != cfg.port:
            _say(f"console: port {cfg.port} is taken; using {port}")
        env["PAGERPATCH_CONSOLE__PORT"] = str(port)
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        self.console_url = f"http://{host}:{port}"
        return True

    async def stop(self) -> None:
        if self.watchdog is not None and self._watching is not None:
            self.watchdog.stopping.set()  # a restart under way finishes first; the stack stops it below
            await asyncio.gather(self._watching, return_exceptions=True)
        if self.supervisor is not None:
            await self.supervisor.stop()
        endpoints.clear(self.settings.state_dir)
        await asyncio.to_thread(self.embedded.stop)
        _say("stopped")


async def run_up(settings: Settings, services: list[str]) -> int:
    """`pagerpatch up`: the pipeline services named, and the console when `console` is among them (the default)."""
    live = endpoints.running(settings.state_dir)
    if live is not None:
        _say(f"already running (pid {live.pid}) on {settings.state_dir}; ingest at {live.ingest_url}")
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        stack = Stack(settings, [s for s in services if s != CONSOLE], console=CONSOLE in services)
    except ValueError as exc:
        _say(str(exc))
        return 2
    try:
        await stack.start()
        await stop.wait()
        _say("stopping…")
        return 0
    except Exception as exc:
        _say(f"failed: {exc}")
        return 1
    finally:
        await stack.stop()

"""`pagerpatch up`: embedded servers if needed, bus set-up, migrations, then the supervised services."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time

import httpx

from pagerpatch.kernel import bus, store
from pagerpatch.ops import endpoints, webhooks
from pagerpatch.ops.embedded import EmbeddedStack, free_port
from pagerpatch.ops.supervisor import SERVICES, Supervisor
from pagerpatch.settings import Settings

log = logging.getLogger(__name__)


def _say(text: str) -> None:
    print(f"[pagerpatch] {text}", flush=True)


async def wait_ready(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return True
            await asyncio.sleep(0.2)
    return False


class Stack:
    """The whole system in this process tree; used by `up` and by `demo`."""

    def __init__(self, settings: Settings, services: list[str] | None = None) -> None:
        unknown = set(services or []) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}; known: {', '.join(SERVICES)}")
        self.settings = settings
        self.services = services if services is not None else list(SERVICES)
        self.embedded = EmbeddedStack(settings.state_dir, settings.nats_url, settings.database_url)
        self.supervisor: Supervisor | None = None
        self.ingest_url = ""

    async def start(self, ready_timeout_s: float = 30.0) -> endpoints.Endpoints:
        started = time.monotonic()
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.embedded.start)
        nats_url, db_url = self.embedded.nats_url, self.embedded.database_url
        _say(f"nats {nats_url}  postgres {db_url.split('@')[-1]}")
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
        self.supervisor = Supervisor(self.services, env)
        await self.supervisor.start()
        ep = endpoints.Endpoints(nats_url=nats_url, database_url=db_url, ingest_url=self.ingest_url, pid=os.getpid())
        endpoints.write(self.settings.state_dir, ep)
        if "ingest" in self.services and not await wait_ready(self.ingest_url, ready_timeout_s):
            raise RuntimeError(f"ingest did not become ready at {self.ingest_url}/readyz")
        _say(f"up in {time.monotonic() - started:.1f}s — ingest at {self.ingest_url} (Ctrl-C stops everything)")
        return ep

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        endpoints.clear(self.settings.state_dir)
        await asyncio.to_thread(self.embedded.stop)
        _say("stopped")


async def run_up(settings: Settings, services: list[str]) -> int:
    live = endpoints.running(settings.state_dir)
    if live is not None:
        _say(f"already running (pid {live.pid}) on {settings.state_dir}; ingest at {live.ingest_url}")
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        stack = Stack(settings, services)
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

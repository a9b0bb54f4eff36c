"""The embedded servers kept alive under `pagerpatch up`: one that dies is restarted on the same port and data.

The services reconnect to the same URL by themselves (their handoffs wait through the outage), so restarting
the server is all it takes; the backoff only guards against a server that cannot start at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pagerpatch.ops.embedded_proc import Lifecycle
from pagerpatch.ops.supervisor import restart_delay

log = logging.getLogger(__name__)


@dataclass
class Revivals:
    """One server's restart history: the streak of quick deaths drives the backoff, a healthy run resets it."""

    restarts: int = 0
    streak: int = 0
    last_start: float = 0.0

    def next_delay(self, now: float, stable_after_s: float, base_s: float, cap_s: float) -> float:
        self.streak = 1 if now - self.last_start >= stable_after_s else self.streak + 1
        return restart_delay(self.streak, base_s, cap_s)


class ServerWatchdog:
    """Watches embedded servers (name -> server) and restarts the ones that exited, until stopped."""

    def __init__(
        self,
        servers: Mapping[str, Lifecycle],
        write: Callable[[str], None],
        *,
        poll_s: float = 0.5,
        stable_after_s: float = 30.0,
        base_s: float = 0.5,
        cap_s: float = 5.0,
    ) -> None:
        self.servers = dict(servers)
        self.write = write
        self.poll_s = poll_s
        self.stable_after_s = stable_after_s
        self.base_s = base_s
        self.cap_s = cap_s
        now = time.monotonic()
        self.history = {name: Revivals(last_start=now) for name in self.servers}
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            for name, server in self.servers.items():
                if not self.stopping.is_set() and not server.alive():
                    await self._revive(name, server)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self.poll_s)

    async def _revive(self, name: str, server: Lifecycle) -> None:
        seen = self.history[name]
        delay = seen.next_delay(time.monotonic(), self.stable_after_s, self.base_s, self.cap_s)
        port = server.port or server.last_port
        self.write(f"{name} exited unexpectedly; restarting it on port {port} (same data) in {delay:.1f}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)
        if self.stopping.is_set():
            return
        started = time.monotonic()
        try:
            url = await asyncio.to_thread(server.restart)
        except Exception as exc:  # said and retried on the next round, with a longer delay
            self.write(f"{name} did not restart: {exc}")
            return
        seen.restarts += 1
        seen.last_start = time.monotonic()
        where = url.split("@")[-1]
        self.write(f"{name} restarted at {where} in {seen.last_start - started:.1f}s (restart #{seen.restarts})")

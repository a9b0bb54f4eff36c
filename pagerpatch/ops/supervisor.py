"""Runs each service as its own process: prefixed logs, restart on crash with backoff, clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

SERVICES: tuple[str, ...] = ("ingest", "triage", "diagnosis", "fixgen", "review", "notifier")
# Not a pipeline stage: the read-only web console (services/console), which `pagerpatch up` runs beside them.
CONSOLE = "console"


# Signals an operator stops a process with: such an exit is a stop, not a crash, and never grows the backoff.
OPERATOR_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def restart_delay(crashes_in_a_row: int, base_s: float = 0.5, cap_s: float = 5.0) -> float:
    """Backoff between restarts of a crashing service (resets once it has run for a while).

    Capped low: a service that crashes while a dependency is down must be back soon after the dependency is.
    """
    return float(min(cap_s, base_s * (2.0 ** min(max(0, crashes_in_a_row - 1), 64))))


def crash_streak(code: int, ran_s: float, crashes_in_a_row: int, stable_after_s: float) -> int:
    """The crash streak after a child exited with `code` having run `ran_s`.

    An operator's SIGTERM/SIGINT is no crash (0: restarted at once); a crash after a healthy run starts a new
    streak; only crashes in quick succession grow it (and with it the backoff).
    """
    if -code in OPERATOR_SIGNALS or code - 128 in OPERATOR_SIGNALS:
        return 0
    return 1 if ran_s >= stable_after_s else crashes_in_a_row + 1


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    crashes_in_a_row: int = 0
    started_at: float = 0.0


class Supervisor:
    """Starts and watches child processes until `stop()`."""

    def __init__(
        self,
        services: Sequence[str],
        env: Mapping[str, str],
        *,
        write: Callable[[str], None] | None = None,
        stable_after_s: float = 20.0,
    ) -> None:
        self.children = [Child(name, [sys.executable, "-u", "-m", f"services.{name}"]) for name in services]
        self.env = dict(env)
        self.write = write or (lambda line: print(line, flush=True))
        self.stable_after_s = stable_after_s
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._width = max(len(n) for n in services) if services else 0

    async def start(self) -> None:
        for child in self.children:
            self._tasks.append(asyncio.create_task(self._watch(child), name=f"supervise-{child.name}"))

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *child.argv,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        child.proc = proc
        child.started_at = time.monotonic()
        return proc

    async def _pipe(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        prefix = f"[{child.name:<{self._width}}] "
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            self.write(prefix + line.decode(errors="replace").rstrip())

    async def _watch(self, child: Child) -> None:
        while not self._stopping.is_set():
            proc = await self._spawn(child)
            pipe = asyncio.create_task(self._pipe(child, proc))
            code = await proc.wait()
            await pipe
            if self._stopping.is_set():
                return
            ran = time.monotonic() - child.started_at
            child.crashes_in_a_row = crash_streak(code, ran, child.crashes_in_a_row, self.stable_after_s)
            delay = restart_delay(child.crashes_in_a_row) if child.crashes_in_a_row else 0.0
            child.restarts += 1
            how = "was stopped by a signal (not a crash)" if child.crashes_in_a_row == 0 else f"exited with {code}"
            self.write(f"[{child.name:<{self._width}}] {how}; restarting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every child, wait, then SIGKILL what is left; leaves no process behind.

        Each service gets exactly one line saying how it stopped, after the last lines it printed itself.
        """
        self._stopping.set()
        running = [(c, c.proc) for c in self.children if c.proc and c.proc.returncode is None]
        for _, p in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        outcome = {c.name: "stopped (it was not running)" for c in self.children}
        for child, p in running:
            try:
                code = await asyncio.wait_for(p.wait(), timeout=max(0.1, deadline - time.monotonic()))
                outcome[child.name] = stop_line(code)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                await p.wait()
                outcome[child.name] = f"killed: still running {timeout_s:.0f}s after SIGTERM"
        # Each watcher returns once its child's output is drained, so the line below comes after the child's own.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout=2.0)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for child in self.children:
            self.write(f"[{child.name:<{self._width}}] {outcome[child.name]}")


def stop_line(code: int) -> str:
    """How a service ended after SIGTERM, in the one line `up` prints for it."""
    if code == 0:
        return "stopped"
    if code < 0:
        return f"stopped by signal {-code}"
    return f"stopped (exit {code})"

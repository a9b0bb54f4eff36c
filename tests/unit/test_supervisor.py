"""The supervisor's stop: one line per service saying how it ended, after that service's own last lines."""

from __future__ import annotations

import asyncio
import sys
import textwrap

import pytest

from pagerpatch.ops import supervisor
from pagerpatch.ops.supervisor import Supervisor, stop_line

# Children stand in for services: each prints "ready", then behaves differently on SIGTERM.
GRACEFUL = """
import signal, sys, time
def bye(*_):
    print("closing connections", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(60)
"""
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""
CRASHING = """
import sys
print("ready", flush=True)
sys.exit(3)
"""


@pytest.mark.parametrize(
    ("code", "line"), [(0, "stopped"), (-15, "stopped by signal 15"), (2, "stopped (exit 2)")]
)  # fmt: skip
def test_stop_line(code: int, line: str) -> None:
    assert stop_line(code) == line


async def test_stop_says_one_line_per_service_after_its_own_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "restart_delay", lambda *_: 60.0)  # the crashed one is still waiting at stop
    lines: list[str] = []
    sup = Supervisor(["graceful", "stubborn", "crashing"], {"PYTHONUNBUFFERED": "1"}, write=lines.append)
    for child, script in zip(sup.children, (GRACEFUL, STUBBORN, CRASHING), strict=True):
        child.argv = [sys.executable, "-c", textwrap.dedent(script)]
    await sup.start()
    for _ in range(400):
        if sum("ready" in line for line in lines) >= 3 and "[crashing] exited with 3; restarting in 60.0s" in lines:
            break
        await asyncio.sleep(0.05)
    await sup.stop(timeout_s=1.0)

    finals = lines[-3:]
    assert finals == [
        "[graceful] stopped",
        "[stubborn] killed: still running 1s after SIGTERM",
        "[crashing] stopped (it was not running)",
    ], lines
    assert lines.index("[graceful] closing connections") < lines.index("[graceful] stopped")
    for name in ("graceful", "stubborn", "crashing"):
        assert sum(line.startswith(f"[{name}] stopped") or line.startswith(f"[{name}] killed") for line in lines) == 1

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


# ---------------------------------------------------------------- recovery: backoff, operator kills

LONG_RUNNING = """
import time
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("code", "ran_s", "streak", "expected"),
    [
        (-15, 0.1, 6, 0),  # the operator's SIGTERM: not a crash, however quick
        (-2, 0.1, 6, 0),  # SIGINT
        (128 + 15, 0.1, 6, 0),  # a shell's report of SIGTERM
        (-9, 0.1, 2, 3),  # SIGKILL (OOM killer, chaos): a crash
        (1, 0.1, 2, 3),  # crashed during start-up again: the streak grows
        (1, 45.0, 6, 1),  # crashed after a healthy run: a new streak, the shortest delay
    ],
)
def test_crash_streak(code: int, ran_s: float, streak: int, expected: int) -> None:
    assert supervisor.crash_streak(code, ran_s, streak, stable_after_s=30.0) == expected


def test_a_crash_after_a_healthy_run_comes_back_within_a_second_and_loops_stay_under_5s() -> None:
    assert supervisor.restart_delay(supervisor.crash_streak(1, 60.0, 9, 30.0)) <= 1.0
    assert max(supervisor.restart_delay(n) for n in range(1, 100)) <= 5.0


async def test_an_operators_sigterm_restarts_at_once_without_counting_as_a_crash() -> None:
    import os
    import signal

    lines: list[str] = []
    sup = Supervisor(["worker"], {"PYTHONUNBUFFERED": "1"}, write=lines.append)
    sup.children[0].argv = [sys.executable, "-c", textwrap.dedent(LONG_RUNNING)]
    await sup.start()
    try:
        for _ in range(200):
            if "[worker] ready" in lines:
                break
            await asyncio.sleep(0.05)
        proc = sup.children[0].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGTERM)  # someone stops the service by hand
        for _ in range(200):
            if sum(line == "[worker] ready" for line in lines) >= 2:
                break
            await asyncio.sleep(0.05)
        assert "[worker] was stopped by a signal (not a crash); restarting in 0.0s" in lines
        assert sum(line == "[worker] ready" for line in lines) == 2
        assert sup.children[0].crashes_in_a_row == 0
    finally:
        await sup.stop(timeout_s=2.0)

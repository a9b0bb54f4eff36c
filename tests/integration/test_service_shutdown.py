"""A service process stops quietly: on SIGINT or SIGTERM it exits 0 without FastStream's per-task chatter.

FastStream's subscriber supervisor logs "callback for Task-N is being executed..." at INFO for every task it
stops; `pagerpatch up` used to print dozens of those on every Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from pagerpatch.kernel import bus, store
from pagerpatch.settings import BusSettings

pytestmark = pytest.mark.integration

CHATTER = "is being executed"


def wait_for_text(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode}:\n{path.read_text(errors='replace')}")
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not seen in time:\n{path.read_text(errors='replace')}")


def signal_once_started(env: dict[str, str], sig: signal.Signals, logs: Path) -> tuple[int, str, str, int]:
    """Run the notifier until it has started, send `sig`; its exit code, stdout, stderr and lines printed before."""
    out, err = logs / "stdout.log", logs / "stderr.log"
    # The notifier has the most subscriber tasks (four consumers, each with its advisory consumer).
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "services.notifier"], env=env, stdout=stdout, stderr=stderr)
    try:
        wait_for_text(out, "notifier started", proc)
        before = len(out.read_text().splitlines()) + len(err.read_text().splitlines())
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, out.read_text(errors="replace"), err.read_text(errors="replace"), before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_service_stops_on_a_signal_without_faststream_task_chatter(
    sig: signal.Signals, nats_url: str, fresh_db: str, js: JetStreamContext, tmp_path: Path
) -> None:
    await bus.setup(js, BusSettings())
    await store.migrate(fresh_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGERPATCH_")}
    env.update({"NATS_URL": nats_url, "DATABASE_URL": fresh_db, "PAGERPATCH_HOME": str(tmp_path / "home"),
                "PYTHONUNBUFFERED": "1"})  # fmt: skip

    code, stdout, stderr, before = await asyncio.to_thread(signal_once_started, env, sig, tmp_path)

    assert code == 0, stdout + stderr
    assert CHATTER not in stderr and CHATTER not in stdout, stdout + stderr
    assert "Traceback" not in stderr, stderr
    after = len(stdout.splitlines()) + len(stderr.splitlines()) - before
    assert after <= 1, stdout + stderr  # at most a line of its own; `up` adds the one "stopped" line

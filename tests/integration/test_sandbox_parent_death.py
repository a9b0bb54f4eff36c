"""A sandboxed command dies with the service that started it, even when the service is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from pagerpatch.sandbox.process import death_signal_prefix

pytestmark = pytest.mark.integration

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from pagerpatch.sandbox.process import execute

    pidfile = sys.argv[1]
    asyncio.run(execute(["/bin/sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"], cwd=Path("/tmp"),
                        env={"PATH": "/usr/bin:/bin"}, timeout_s=120, output_limit=1000))
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.skipif(not death_signal_prefix(), reason="util-linux setpriv is not installed")
def test_command_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(pidfile)], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 20
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline, "the command never started"
            assert parent.poll() is None, "the parent exited early"
            time.sleep(0.05)
        command = int(pidfile.read_text())
        assert _alive(command)
        os.kill(parent.pid, signal.SIGKILL)  # no finally, no killpg: only the parent-death signal is left
        parent.wait(5)
        deadline = time.monotonic() + 5
        while _alive(command) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(command), "the sandboxed command outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()

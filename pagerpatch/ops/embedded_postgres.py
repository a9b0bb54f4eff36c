"""The embedded Postgres: pgserver's binaries, data under `state_dir/postgres/data`, run as a system user when root."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil

from pagerpatch.ops.embedded_proc import (
    DATABASE,
    LOCALHOST,
    POSTGRES_SYSTEM_USER,
    POSTGRES_USER,
    START_ATTEMPTS,
    EmbeddedServerError,
    Lifecycle,
    clean_env,
    file_size,
    free_port,
    is_running,
    kill_processes,
    live_process,
    log_since,
    netloc,
    read_pid,
    wait_gone,
)

log = logging.getLogger(__name__)


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


class EmbeddedPostgres(Lifecycle):
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
        return f"postgresql://{POSTGRES_USER}@{netloc(self.host, self.port)}/{database}"

    def start(self, timeout: float = 30.0) -> str:
        """initdb if needed, stop a stale postmaster, start on a free port, ensure the `pagerpatch` db."""
        if self._pid is not None and is_running(self._pid):
            return self.url
        bin_dir = _pg_tools()
        self._prepare_dirs(bin_dir)
        self._stop_stale(timeout)
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "--auth=trust", "--encoding=utf8"]
            self._run([*initdb, "--locale=C", "-U", POSTGRES_USER, "--no-instructions"], timeout=120.0)
        deadline = time.monotonic() + timeout
        for attempt in range(1, START_ATTEMPTS + 1):
            port = self.requested_port or free_port(self.host)
            offset = file_size(self.log_path)
            # TCP only: no unix socket, so no socket-path length limit and no lock file in /tmp.
            options = f"-h {self.host} -p {port} -k ''"
            wait_s = max(1, int(deadline - time.monotonic()))
            try:
                self._pg_ctl("-l", str(self.log_path), "-w", "-t", str(wait_s), "-o", options, "start")
            except EmbeddedServerError as err:
                tail = log_since(self.log_path, offset)
                self._kill_data_dir_processes(timeout=5.0)  # a postmaster pg_ctl gave up waiting for
                if attempt < START_ATTEMPTS and self._retryable(f"{err}\n{tail}"):
                    log.info("postgres did not start (attempt %d), retrying:\n%s\n%s", attempt, err, tail)
                    self._prepare_dirs(bin_dir)
                    continue
                raise EmbeddedServerError(f"{err}\npostgres log:\n{tail}") from None
            self.port, self._pid = port, read_pid(self.data / "postmaster.pid")
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
        self.last_port = self.port or self.last_port
        pid, self._pid, self.port = self._pid, None, None
        if pid is None:
            return
        atexit.unregister(self.stop)
        # Only the postmaster that still owns the data dir is ours to stop.
        if read_pid(self.data / "postmaster.pid") == pid:
            self._shutdown(pid, timeout)

    def alive(self) -> bool:
        return self._pid is not None and is_running(self._pid)

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
        if not wait_gone([pid], timeout):
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
                    env=clean_env(),
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
            subprocess.run(cmd, input=script, capture_output=True, text=True, check=True, timeout=30.0, env=clean_env())
        except subprocess.CalledProcessError as err:
            raise EmbeddedServerError(f"could not create database {name}: {err.stderr}") from None

    def _stop_stale(self, timeout: float) -> None:
        """Stop a postmaster (and orphaned backends) a crashed previous run left on this data dir."""
        pid_file = self.data / "postmaster.pid"
        pid = read_pid(pid_file)
        if pid is None:
            return
        if live_process(pid, "postgres", str(self.data)) is not None:
            log.warning("stopping stale postmaster pid %d on %s", pid, self.data)
            self._shutdown(pid, timeout)
        # Children of a killed postmaster hold its shared memory and block a new start until they exit.
        self._kill_data_dir_processes(timeout=5.0)
        if live_process(pid, "postgres", str(self.data)) is None:
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
            kill_processes(procs, timeout, sig=signal.SIGQUIT)

"""Run a repository's real test command in isolation: bubblewrap by default, unsandboxed only when allowed.

Every runner starts from a minimal environment (parent secrets never leak), enforces a wall-clock timeout by
killing the whole process tree, caps address space, and keeps only the head and tail of the output.

Memory limit: `prlimit --as=<bytes>` (util-linux, in /usr/bin so it is visible inside the sandbox) wraps the
command. `preexec_fn` + `resource.setrlimit` is only the fallback when prlimit is missing, because
`preexec_fn` is not safe in a process that runs threads, which the services do.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

import psutil

from pagerpatch.sandbox.output import (
    OutputBuffer,
    extract_summary,
    looks_out_of_memory,
    truncate_output,
    truncation_marker,
)
from pagerpatch.settings import SandboxSettings

__all__ = [
    "BubblewrapSandbox",
    "OutputBuffer",
    "Sandbox",
    "SandboxError",
    "SandboxResult",
    "SandboxUnavailable",
    "UnsandboxedRunner",
    "extract_summary",
    "make_sandbox",
    "truncate_output",
    "truncation_marker",
]

BackendName = Literal["bubblewrap", "unsandboxed"]

_READ_CHUNK = 65_536
_DRAIN_GRACE_S = 3.0  # how long to wait for the output pipe to close once the process tree is dead
_PROBE_TIMEOUT_S = 15.0

_UNSANDBOXED_HINT = (
    "To run tests WITHOUT isolation instead (trusted repositories only), set both "
    "PAGERPATCH_SANDBOX__BACKEND=unsandboxed and PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true."
)
_INSTALL_HINT = (
    "Install it with `apt install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap` (Fedora/RHEL). "
    + _UNSANDBOXED_HINT
)


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the command it ran): bad workdir, bwrap setup error."""


class SandboxUnavailable(SandboxError):
    """No runner can be built with the settings in force; the message says how to fix it."""


# ---------------------------------------------------------------- result and interface


@dataclass(frozen=True)
class SandboxResult:
    """What a command did inside a runner.

    `exit_code` follows the shell convention (128 + N when killed by signal N) and is None on timeout.
    """

    command: str
    exit_code: int | None
    timed_out: bool
    duration_s: float
    output: str
    backend: BackendName
    output_bytes: int = 0  # everything the command wrote, before truncation
    output_truncated: bool = False
    killed_by_signal: int | None = None  # 128 < exit_code <= 192 is read as a signal (best effort)
    out_of_memory: bool = False  # best effort: failed allocation reported at the end of the output

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def summary(self) -> str:
        """One-line test summary for PR bodies and events."""
        text = extract_summary(self.output)
        if self.timed_out:
            return f"timed out after {self.duration_s:.1f}s; last output: {text}"
        return text


class Sandbox(Protocol):
    """Runs a shell command in a working tree and reports what happened."""

    async def run(
        self,
        command: str,
        workdir: Path,
        *,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SandboxResult: ...


# ---------------------------------------------------------------- process plumbing shared by the runners


@dataclass(frozen=True)
class _Completed:
    returncode: int | None
    timed_out: bool
    duration_s: float
    output: OutputBuffer


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """A minimal environment; sys.executable's directory comes first so `python` is this interpreter."""
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


def _memory_limit(memory_bytes: int) -> tuple[list[str], Callable[[], None] | None]:
    """Argv prefix (prlimit) or, without prlimit, a preexec hook that sets RLIMIT_AS."""
    for candidate in ("/usr/bin/prlimit", "/bin/prlimit"):
        if os.access(candidate, os.X_OK):
            return [candidate, f"--as={memory_bytes}", "--"], None

    def _set_rlimit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return [], _set_rlimit


def _kill_tree(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group (the runner starts a new session) and any descendant that left it."""
    descendants: list[psutil.Process] = []
    if proc.returncode is None:  # not reaped yet, so the pid still names our child
        with suppress(psutil.Error):
            descendants = psutil.Process(proc.pid).children(recursive=True)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in descendants:
        with suppress(psutil.Error):
            child.kill()


async def _pump(stream: asyncio.StreamReader, buffer: OutputBuffer) -> None:
    while chunk := await stream.read(_READ_CHUNK):
        buffer.feed(chunk)


async def _execute(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    output_limit: int,
    pass_fds: Sequence[int] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> _Completed:
    """Start `argv` in a new session, collect bounded output, kill the whole tree when done or late."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
        preexec_fn=preexec_fn,
    )
    buffer = OutputBuffer(output_limit)
    assert proc.stdout is not None
    reader = asyncio.create_task(_pump(proc.stdout, buffer))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
    finally:
        # Also on cancellation: nothing the command started may outlive the call.
        _kill_tree(proc)
        if proc.returncode is None:
            await proc.wait()
        duration = time.monotonic() - started
        try:
            await asyncio.wait_for(reader, _DRAIN_GRACE_S)
        except TimeoutError:
            pass  # something escaped the group and holds the pipe; what we have is kept
    return _Completed(None if timed_out else proc.returncode, timed_out, duration, buffer)


def _signal_of(exit_code: int | None) -> int | None:
    if exit_code is not None and 128 < exit_code <= 128 + 64:
        return exit_code - 128
    return None


def _result(command: str, done: _Completed, exit_code: int | None, backend: BackendName) -> SandboxResult:
    output = done.output.render()
    return SandboxResult(
        command=command,
        exit_code=exit_code,
        timed_out=done.timed_out,
        duration_s=done.duration_s,
        output=output,
        backend=backend,
        output_bytes=done.output.total,
        output_truncated=done.output.truncated,
        killed_by_signal=_signal_of(exit_code),
        out_of_memory=exit_code not in (0, None) and looks_out_of_memory(output),
    )


def _checked_workdir(workdir: Path) -> Path:
    resolved = Path(workdir).resolve()
    if not resolved.is_dir():
        raise SandboxError(f"working tree {resolved} does not exist or is not a directory")
    return resolved


# ---------------------------------------------------------------- bubblewrap

_NAMESPACE_ARGS = (
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)
_MASKED_FILES = ("/etc/shadow", "/etc/gshadow")


def _system_args() -> list[str]:
    """Read-only host system: /usr, the merged-/usr symlinks (or dirs) and /etc, with fresh /proc /dev /tmp."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    if Path("/etc").is_dir():
        args += ["--ro-bind", "/etc", "/etc"]
        for secret in _MASKED_FILES:
            if os.path.lexists(secret):
                args += ["--ro-bind", "/dev/null", secret]
    return [*args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def _interpreter_dirs() -> list[Path]:
    """Where this Python lives (venv and base install) when it is outside the read-only /usr."""
    found: list[Path] = []
    for raw in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        path = Path(raw).resolve()
        if path.is_dir() and not path.is_relative_to("/usr") and path not in found:
            found.append(path)
    return found


def _probe_error(bwrap: str) -> str | None:
    """Run a trivial command in the same namespaces; None when it works, else what went wrong."""
    argv = [bwrap, *_NAMESPACE_ARGS, *_system_args(), "--", "/bin/sh", "-c", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"


@lru_cache(maxsize=8)
def _cached_probe(bwrap: str) -> str | None:
    return _probe_error(bwrap)


class BubblewrapSandbox:
    """No network, read-only system, the working tree writable at its own path, nothing else of the host."""

    backend: BackendName = "bubblewrap"

    def __init__(
        self,
        *,
        bwrap_path: str | Path | None = None,
        timeout_s: float = 300.0,
        memory_mb: int = 2048,
        output_limit_bytes: int = 64_000,
        ro_binds: Sequence[Path] = (),
    ) -> None:
        found = shutil.which("bwrap") if bwrap_path is None else str(bwrap_path)
        self.bwrap_path = found
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.output_limit_bytes = output_limit_bytes
        self.ro_binds = tuple(Path(p).resolve() for p in ro_binds)

    def unavailable_reason(self) -> str | None:
        """Why this sandbox cannot run (missing bwrap, namespaces refused), or None. The probe is cached."""
        path = self.bwrap_path
        if path is None or not os.access(path, os.X_OK):
            where = f"at {path}" if path else "on PATH"
            return (
                "bubblewrap (bwrap) is required to run repository tests in a sandbox "
                f"but was not found {where}. {_INSTALL_HINT}"
            )
        error = _cached_probe(path)
        if error is None:
            return None
        return (
            f"bubblewrap is installed at {path} but cannot create the sandbox namespaces: {error}. "
            "Typical causes: unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces>0; on Ubuntu 24.04 kernel.apparmor_restrict_unprivileged_userns=0 or an "
            "AppArmor profile for bwrap), or a container runtime blocks unshare/mount (run the container with "
            "CAP_SYS_ADMIN or a seccomp profile that allows them). " + _UNSANDBOXED_HINT
        )

    def available(self) -> bool:
        return self.unavailable_reason() is None

    def argv(self, command: str, workdir: Path, *, status_fd: int | None = None) -> list[str]:
        """The full bwrap command line for `command` run from `workdir` (an absolute, existing directory)."""
        assert self.bwrap_path is not None
        # Parents before children so a nested bind (venv inside the tree, tree inside a prefix) wins.
        binds: list[tuple[str, Path]] = [("--ro-bind", p) for p in (*_interpreter_dirs(), *self.ro_binds)]
        binds.append(("--bind", workdir))
        binds.sort(key=lambda bind: len(bind[1].parts))
        args = [self.bwrap_path, *_NAMESPACE_ARGS, *_system_args()]
        for flag, path in binds:
            args += [flag, str(path), str(path)]
        args += ["--chdir", str(workdir)]
        if status_fd is not None:
            args += ["--json-status-fd", str(status_fd)]
        limit_prefix, _ = _memory_limit(self.memory_mb * 1024 * 1024)
        return [*args, "--", *limit_prefix, "/bin/sh", "-c", command]

    async def run(
        self,
        command: str,
        workdir: Path,
        *,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SandboxResult:
        """Run `command` with /bin/sh inside the sandbox; raises SandboxError when bwrap itself fails."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise SandboxUnavailable(reason)
        tree = _checked_workdir(workdir)
        _, preexec = _memory_limit(self.memory_mb * 1024 * 1024)
        status_read, status_write = os.pipe()
        try:
            try:
                done = await _execute(
                    self.argv(command, tree, status_fd=status_write),
                    cwd=tree,
                    env=_clean_env(env),
                    timeout_s=self.timeout_s if timeout_s is None else timeout_s,
                    output_limit=self.output_limit_bytes,
                    pass_fds=(status_write,),
                    preexec_fn=preexec,
                )
            finally:
                os.close(status_write)
            status = _read_status(status_read)
        finally:
            os.close(status_read)
        if done.timed_out:
            return _result(command, done, None, self.backend)
        exit_code = status.get("exit-code")
        if not isinstance(exit_code, int):  # the child never ran: bwrap's own setup failed
            raise SandboxError(f"bubblewrap could not start the command: {done.output.render().strip()}")
        return _result(command, done, exit_code, self.backend)


def _read_status(fd: int) -> dict[str, object]:
    """Merge bwrap's --json-status-fd objects (child-pid, then exit-code) read without blocking."""
    os.set_blocking(fd, False)
    data = b""
    with suppress(BlockingIOError):
        while chunk := os.read(fd, 4096):
            data += chunk
    status: dict[str, object] = {}
    for line in data.decode(errors="replace").splitlines():
        with suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                status.update(parsed)
    return status


# ---------------------------------------------------------------- unsandboxed


class UnsandboxedRunner:
    """No isolation at all (host network and files); still a clean environment, timeout and limits."""

    backend: BackendName = "unsandboxed"

    def __init__(
        self,
        *,
        allow_unsandboxed: bool,
        timeout_s: float = 300.0,
        memory_mb: int = 2048,
        output_limit_bytes: int = 64_000,
    ) -> None:
        if not allow_unsandboxed:
            raise SandboxUnavailable(
                "the unsandboxed runner executes repository code with no isolation and must be allowed "
                "explicitly: set PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true (with "
                "PAGERPATCH_SANDBOX__BACKEND=unsandboxed), or use the default bubblewrap backend."
            )
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.output_limit_bytes = output_limit_bytes

    async def run(
        self,
        command: str,
        workdir: Path,
        *,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SandboxResult:
        """Run `command` with /bin/sh in `workdir` on the host."""
        tree = _checked_workdir(workdir)
        prefix, preexec = _memory_limit(self.memory_mb * 1024 * 1024)
        done = await _execute(
            [*prefix, "/bin/sh", "-c", command],
            cwd=tree,
            env=_clean_env(env),
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            output_limit=self.output_limit_bytes,
            preexec_fn=preexec,
        )
        code = done.returncode
        if code is not None and code < 0:  # killed by a signal: report it the way the shell does
            code = 128 - code
        return _result(command, done, code, self.backend)


def make_sandbox(settings: SandboxSettings, *, bwrap_path: str | Path | None = None) -> Sandbox:
    """The runner the settings ask for; raises SandboxUnavailable with the fix when it cannot be built."""
    if settings.backend == "unsandboxed":
        return UnsandboxedRunner(
            allow_unsandboxed=settings.allow_unsandboxed,
            timeout_s=settings.timeout_s,
            memory_mb=settings.memory_mb,
            output_limit_bytes=settings.output_limit_bytes,
        )
    sandbox = BubblewrapSandbox(
        bwrap_path=bwrap_path,
        timeout_s=settings.timeout_s,
        memory_mb=settings.memory_mb,
        output_limit_bytes=settings.output_limit_bytes,
    )
    reason = sandbox.unavailable_reason()
    if reason is not None:
        raise SandboxUnavailable(reason)
    return sandbox

"""Process plumbing both runners share: a clean environment, the memory limit, bounded output, killing the tree.

A sandbox never outlives its parent: it runs in its own process group, killed when the call ends (also on
cancellation), and with a parent-death signal so a SIGKILLed service takes it along (bwrap adds
`--die-with-parent` for everything inside).

Memory limit: `prlimit --as=<bytes>` (util-linux, in /usr/bin so it is visible inside the sandbox) wraps the
command. `preexec_fn` + `resource.setrlimit` is only the fallback when prlimit is missing, because
`preexec_fn` is not safe in a process that runs threads, which the services do.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from pagerpatch.sandbox.output import OutputBuffer, looks_out_of_memory
from pagerpatch.sandbox.port import BackendName, SandboxError, SandboxResult

_READ_CHUNK = 65_536
_DRAIN_GRACE_S = 3.0  # how long to wait for the output pipe to close once the process tree is dead


@dataclass(frozen=True)
class Completed:
    """How a launched command ended: its raw return code (None on timeout), duration and bounded output."""

    returncode: int | None
    timed_out: bool
    duration_s: float
    output: OutputBuffer


def clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
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


def memory_limit(memory_bytes: int) -> tuple[list[str], Callable[[], None] | None]:
    """Argv prefix (prlimit) or, without prlimit, a preexec hook that sets RLIMIT_AS."""
    for candidate in ("/usr/bin/prlimit", "/bin/prlimit"):
        if os.access(candidate, os.X_OK):
            return [candidate, f"--as={memory_bytes}", "--"], None

    def _set_rlimit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return [], _set_rlimit


def death_signal_prefix() -> list[str]:
    """Argv prefix that makes the command get SIGKILL when the process that started it dies (even by SIGKILL).

    util-linux's `setpriv --pdeathsig` sets PR_SET_PDEATHSIG in the child just before it execs the command, the
    same as a `prctl` in a preexec hook but without running Python between fork and exec (not safe in a process
    with threads). bwrap's own `--die-with-parent` then carries it into the sandbox; a plain command's own
    children are still covered by the process-group kill when the parent lives long enough to do it.
    """
    for candidate in ("/usr/bin/setpriv", "/bin/setpriv"):
        if os.access(candidate, os.X_OK):
            return [candidate, "--pdeathsig", "KILL", "--"]
    return []


def kill_tree(proc: asyncio.subprocess.Process) -> None:
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


async def execute(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    output_limit: int,
    pass_fds: Sequence[int] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> Completed:
    """Start `argv` in a new session, collect bounded output, kill the whole tree when done or late."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *death_signal_prefix(),
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
        kill_tree(proc)
        if proc.returncode is None:
            await proc.wait()
        duration = time.monotonic() - started
        try:
            await asyncio.wait_for(reader, _DRAIN_GRACE_S)
        except TimeoutError:
            pass  # something escaped the group and holds the pipe; what we have is kept
    return Completed(None if timed_out else proc.returncode, timed_out, duration, buffer)


def signal_of(exit_code: int | None) -> int | None:
    """The signal a shell-convention exit code (128 + N) stands for, if any."""
    if exit_code is not None and 128 < exit_code <= 128 + 64:
        return exit_code - 128
    return None


def result_of(command: str, done: Completed, exit_code: int | None, backend: BackendName) -> SandboxResult:
    """The caller's view of a finished command; `exit_code` is what the runner read (shell convention)."""
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
        killed_by_signal=signal_of(exit_code),
        out_of_memory=exit_code not in (0, None) and looks_out_of_memory(output),
    )


def checked_workdir(workdir: Path) -> Path:
    """`workdir` resolved; a missing tree is the sandbox's failure, not the command's."""
    resolved = Path(workdir).resolve()
    if not resolved.is_dir():
        raise SandboxError(f"working tree {resolved} does not exist or is not a directory")
    return resolved


def read_status(fd: int) -> dict[str, object]:
    """Merge the JSON status objects written to `fd` (bwrap: child-pid, then exit-code), read without blocking."""
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


class LimitedRunner:
    """The limits every runner enforces, and the one way a runner launches a command within them."""

    def __init__(self, *, timeout_s: float, memory_mb: int, output_limit_bytes: int) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.output_limit_bytes = output_limit_bytes

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024

    async def launch(
        self,
        argv: Sequence[str],
        tree: Path,
        *,
        timeout_s: float | None,
        env: Mapping[str, str] | None,
        pass_fds: Sequence[int] = (),
    ) -> Completed:
        """Run `argv` from `tree` in a clean environment, within this runner's timeout (unless overridden)."""
        _, preexec = memory_limit(self.memory_bytes)  # the fallback hook; with prlimit the argv carries the limit
        return await execute(
            argv,
            cwd=tree,
            env=clean_env(env),
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            output_limit=self.output_limit_bytes,
            pass_fds=pass_fds,
            preexec_fn=preexec,
        )

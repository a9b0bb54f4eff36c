"""Process plumbing both runners share: a clean environment, the limits, bounded output, killing the tree.

A sandbox never outlives its parent: it runs in its own process group, killed when the call ends (also on
cancellation), and with a parent-death signal so a SIGKILLed service takes it along (bwrap adds
`--die-with-parent` for everything inside).

Limits (docs in README "Sandbox limits"): rlimits always — `prlimit --as=<bytes> --cpu=<s> --nproc=<n>`
(util-linux, in /usr/bin so it is visible inside the sandbox) wraps the command; `preexec_fn` +
`resource.setrlimit` is only the fallback when prlimit is missing, because `preexec_fn` is not safe in a process
that runs threads, which the services do. On top of them, a control group per run where the host allows one
(cgroups.py): memory.max + pids.max on cgroup v2, pids.max on a v1 host; everything in it dies with the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
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

from pagerpatch.kernel import metrics
from pagerpatch.sandbox import cgroups
from pagerpatch.sandbox.output import OutputBuffer, looks_out_of_memory
from pagerpatch.sandbox.port import BackendName, SandboxError, SandboxResult

log = logging.getLogger(__name__)

_READ_CHUNK = 65_536
_DRAIN_GRACE_S = 3.0  # how long to wait for the output pipe to close once the process tree is dead


@dataclass(frozen=True)
class Completed:
    """How a launched command ended: its raw return code (None on timeout), duration and bounded output."""

    returncode: int | None
    timed_out: bool
    duration_s: float
    output: OutputBuffer
    oom_killed: bool = False  # the run's cgroup reports an OOM kill
    process_limit_hit: bool = False  # a fork was refused by the run's cgroup pids.max


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


def rlimits(
    memory_bytes: int, cpu_s: int | None = None, nproc: int | None = None
) -> tuple[list[str], Callable[[], None] | None]:
    """Argv prefix (prlimit) or, without prlimit, a preexec hook: RLIMIT_AS, RLIMIT_CPU (SIGXCPU at `cpu_s`,
    SIGKILL a second later) and RLIMIT_NPROC (not binding for root: the cgroup's pids.max is, where there is one)."""
    limits: list[tuple[int, int, int]] = [(resource.RLIMIT_AS, memory_bytes, memory_bytes)]
    args = [f"--as={memory_bytes}"]
    if cpu_s is not None:
        limits.append((resource.RLIMIT_CPU, cpu_s, cpu_s + 1))
        args.append(f"--cpu={cpu_s}:{cpu_s + 1}")
    if nproc is not None:
        limits.append((resource.RLIMIT_NPROC, nproc, nproc))
        args.append(f"--nproc={nproc}")
    for candidate in ("/usr/bin/prlimit", "/bin/prlimit"):
        if os.access(candidate, os.X_OK):
            return [candidate, *args, "--"], None

    def _set_rlimits() -> None:
        for which, soft, hard in limits:
            resource.setrlimit(which, (soft, hard))

    return [], _set_rlimits


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
    group: cgroups.RunGroup | None = None,
) -> Completed:
    """Start `argv` in a new session (inside `group` when given), collect bounded output, kill the whole tree (and
    everything in the group) when done or late."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *death_signal_prefix(),
        *(group.join_prefix() if group is not None else ()),
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
        if group is not None:  # whatever escaped the process group and the tree is still in the cgroup
            await asyncio.to_thread(group.kill)
        if proc.returncode is None:
            await proc.wait()
        duration = time.monotonic() - started
        try:
            await asyncio.wait_for(reader, _DRAIN_GRACE_S)
        except TimeoutError:
            pass  # something escaped the group and holds the pipe; what we have is kept
    oom, pids_hit = (group.oom_killed, group.process_limit_hit) if group is not None else (False, False)
    return Completed(None if timed_out else proc.returncode, timed_out, duration, buffer, oom, pids_hit)


def signal_of(exit_code: int | None) -> int | None:
    """The signal a shell-convention exit code (128 + N) stands for, if any."""
    if exit_code is not None and 128 < exit_code <= 128 + 64:
        return exit_code - 128
    return None


def result_of(command: str, done: Completed, exit_code: int | None, backend: BackendName) -> SandboxResult:
    """The caller's view of a finished command; `exit_code` is what the runner read (shell convention)."""
    output = done.output.render()
    metrics.sandbox_run(backend, passed=exit_code == 0, timed_out=done.timed_out, seconds=done.duration_s)
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
        out_of_memory=done.oom_killed or (exit_code not in (0, None) and looks_out_of_memory(output)),
        limits_hit=limits_hit(done, exit_code, output),
    )


def limits_hit(done: Completed, exit_code: int | None, output: str) -> tuple[str, ...]:
    """Which limits stopped (part of) the run: memory, cpu, processes (best effort, for messages)."""
    hit = []
    if done.oom_killed or (exit_code not in (0, None) and looks_out_of_memory(output)):
        hit.append("memory")
    if signal_of(exit_code) == signal.SIGXCPU:
        hit.append("cpu")
    if done.process_limit_hit or "Resource temporarily unavailable" in output:
        hit.append("processes")
    return tuple(hit)


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

    def __init__(
        self,
        *,
        timeout_s: float,
        memory_mb: int,
        output_limit_bytes: int,
        cpu_s: int | None = None,
        max_processes: int | None = 512,
        cgroups: bool = True,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.output_limit_bytes = output_limit_bytes
        self.cpu_s = cpu_s
        self.max_processes = max_processes
        self.cgroups = cgroups

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024

    def cpu_seconds(self, timeout_s: float | None) -> int:
        """RLIMIT_CPU for one run: `cpu_s`, or (unset) twice the run's wall-clock limit, so that a multi-threaded
        test process is not cut before its timeout while a process spinning on every core still is."""
        if self.cpu_s is not None:
            return self.cpu_s
        return 2 * math.ceil(self.timeout_s if timeout_s is None else timeout_s)

    def nproc(self) -> int | None:
        """RLIMIT_NPROC: the process limit (a runner whose processes share the user's count adds to it)."""
        return self.max_processes

    def limit_prefix(self, timeout_s: float | None) -> list[str]:
        """Argv prefix that sets this runner's rlimits (empty without prlimit: then `launch` sets them)."""
        return rlimits(self.memory_bytes, self.cpu_seconds(timeout_s), self.nproc())[0]

    def cgroup_support(self) -> cgroups.CgroupSupport | None:
        return cgroups.detect() if self.cgroups else None

    async def launch(
        self,
        argv: Sequence[str],
        tree: Path,
        *,
        timeout_s: float | None,
        env: Mapping[str, str] | None,
        pass_fds: Sequence[int] = (),
    ) -> Completed:
        """Run `argv` from `tree` in a clean environment, within this runner's timeout (unless overridden) and,
        where the host allows it, in a control group of its own."""
        # The fallback hook; with prlimit the argv carries the limits.
        _, preexec = rlimits(self.memory_bytes, self.cpu_seconds(timeout_s), self.nproc())
        group = await asyncio.to_thread(self._group)
        try:
            return await execute(
                argv,
                cwd=tree,
                env=clean_env(env),
                timeout_s=self.timeout_s if timeout_s is None else timeout_s,
                output_limit=self.output_limit_bytes,
                pass_fds=pass_fds,
                preexec_fn=preexec,
                group=group,
            )
        finally:
            if group is not None:
                await asyncio.to_thread(group.close)

    def _group(self) -> cgroups.RunGroup | None:
        support = self.cgroup_support()
        if support is None:
            return None
        try:
            return cgroups.RunGroup.create(support, memory_bytes=self.memory_bytes, max_processes=self.max_processes)
        except OSError as exc:  # the rlimits still hold
            log.warning(
                "sandbox cgroup under %s could not be made (%s): rlimits only for this run", support.parent, exc
            )
            return None

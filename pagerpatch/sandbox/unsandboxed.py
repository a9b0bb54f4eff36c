"""The explicit opt-out: run tests on the host with no isolation, still with a clean environment and limits.

What it cannot do (bubblewrap does): keep the command off the network, keep it from writing anywhere the user
can outside the working tree, hide the host's files. Memory, CPU, process and time limits hold the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import psutil

from pagerpatch.sandbox.port import BackendName, Mounts, SandboxResult, SandboxUnavailable
from pagerpatch.sandbox.process import LimitedRunner, checked_workdir, result_of


class UnsandboxedRunner(LimitedRunner):
    """No isolation at all (host network and files); still a clean environment, timeout and limits."""

    backend: BackendName = "unsandboxed"

    def __init__(
        self,
        *,
        allow_unsandboxed: bool,
        timeout_s: float = 300.0,
        memory_mb: int = 2048,
        output_limit_bytes: int = 64_000,
        cpu_s: int | None = None,
        max_processes: int | None = 512,
        cgroups: bool = True,
    ) -> None:
        if not allow_unsandboxed:
            raise SandboxUnavailable(
                "the unsandboxed runner executes repository code with no isolation and must be allowed "
                "explicitly: set PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true (with "
                "PAGERPATCH_SANDBOX__BACKEND=unsandboxed), or use the default bubblewrap backend."
            )
        super().__init__(timeout_s=timeout_s, memory_mb=memory_mb, output_limit_bytes=output_limit_bytes,
                         cpu_s=cpu_s, max_processes=max_processes, cgroups=cgroups)  # fmt: skip

    def nproc(self) -> int | None:
        """On the host the command's processes count with every other process of this user (RLIMIT_NPROC is per
        user, in the host's user namespace): the limit is on top of what the user runs already."""
        if self.max_processes is None or os.getuid() == 0:  # root: not binding; the cgroup's pids.max is
            return self.max_processes
        return self.max_processes + _tasks_of(os.getuid())

    async def run(
        self,
        command: str,
        workdir: Path,
        *,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        mounts: Mounts | None = None,
    ) -> SandboxResult:
        """Run `command` with /bin/sh in `workdir` on the host (`mounts` changes nothing: the host is all there)."""
        tree = checked_workdir(workdir)
        prefix = self.limit_prefix(timeout_s)
        done = await self.launch([*prefix, "/bin/sh", "-c", command], tree, timeout_s=timeout_s, env=env)
        code = done.returncode
        if code is not None and code < 0:  # killed by a signal: report it the way the shell does
            code = 128 - code
        return result_of(command, done, code, self.backend)


def _tasks_of(uid: int) -> int:
    """Processes and threads of `uid` now (what RLIMIT_NPROC counts)."""
    count = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        uids, threads = proc.info.get("uids"), proc.info.get("num_threads")
        if uids is not None and uids.real == uid:
            count += threads or 1
    return count

"""The explicit opt-out: run tests on the host with no isolation, still with a clean environment and limits."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pagerpatch.sandbox.port import BackendName, Mounts, SandboxResult, SandboxUnavailable
from pagerpatch.sandbox.process import LimitedRunner, checked_workdir, memory_limit, result_of


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
    ) -> None:
        if not allow_unsandboxed:
            raise SandboxUnavailable(
                "the unsandboxed runner executes repository code with no isolation and must be allowed "
                "explicitly: set PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true (with "
                "PAGERPATCH_SANDBOX__BACKEND=unsandboxed), or use the default bubblewrap backend."
            )
        super().__init__(timeout_s=timeout_s, memory_mb=memory_mb, output_limit_bytes=output_limit_bytes)

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
        prefix, _ = memory_limit(self.memory_bytes)
        done = await self.launch([*prefix, "/bin/sh", "-c", command], tree, timeout_s=timeout_s, env=env)
        code = done.returncode
        if code is not None and code < 0:  # killed by a signal: report it the way the shell does
            code = 128 - code
        return result_of(command, done, code, self.backend)

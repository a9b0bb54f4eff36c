"""What a sandbox is to its callers: the `Sandbox` protocol, what a run may see (`Mounts`), the result it reports,
and the errors it raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pagerpatch.sandbox.output import extract_summary

BackendName = Literal["bubblewrap", "unsandboxed"]


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the command it ran): bad workdir, bwrap setup error."""


class SandboxUnavailable(SandboxError):
    """No runner can be built with the settings in force; the message says how to fix it."""


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
    limits_hit: tuple[str, ...] = ()  # best effort: "memory", "cpu", "processes" (README: sandbox limits)

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


@dataclass(frozen=True)
class Mounts:
    """What one run sees besides the read-only system and its working tree, and whether it has the network.

    Bubblewrap honours every field; the unsandboxed runner sees the whole host anyway and cannot move the tree.
    """

    read_only: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    network: bool = False  # only a repository's set-up asks for it, and only when its config says so
    # Where the working tree appears inside (a stable path, so what a set-up records keeps pointing at the code
    # under test); None: at its own path.
    workdir_at: Path | None = None
    # pagerpatch's own interpreter (its venv and base install) visible read-only; a repository environment turns
    # this off and brings its own interpreter instead.
    host_python: bool = True


class Sandbox(Protocol):
    """Runs a shell command in a working tree and reports what happened."""

    @property
    def backend(self) -> BackendName: ...

    async def run(
        self,
        command: str,
        workdir: Path,
        *,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        mounts: Mounts | None = None,
    ) -> SandboxResult: ...

"""Run a repository's real test command in isolation: bubblewrap by default, unsandboxed only when allowed.

Every runner starts from a minimal environment (parent secrets never leak), enforces a wall-clock timeout by
killing the whole process tree, caps memory, CPU time and processes (rlimits, plus a control group per run where
the host allows one: `cgroups`), and keeps only the head and tail of the output.
The seams: `port` (what callers see), `process` (shared plumbing), `bubblewrap` and `unsandboxed` (the two
runners), `output` (pure output handling), `environment` (a repository's own Python environment), `testrun` (a
test command with per-test results) and `junit` (reading them); this module re-exports the public names and
builds the runner.
"""

from __future__ import annotations

from pathlib import Path

from pagerpatch.sandbox import cgroups
from pagerpatch.sandbox.bubblewrap import BubblewrapSandbox
from pagerpatch.sandbox.environment import BaseInterpreter, Environments, RepoEnvironment, SetupFailed
from pagerpatch.sandbox.junit import TestResults, failure_list, parse_junit
from pagerpatch.sandbox.output import OutputBuffer, extract_summary, truncate_output, truncation_marker
from pagerpatch.sandbox.port import BackendName, Mounts, Sandbox, SandboxError, SandboxResult, SandboxUnavailable
from pagerpatch.sandbox.testrun import TestReport, run_python, run_test_command
from pagerpatch.sandbox.unsandboxed import UnsandboxedRunner
from pagerpatch.settings import SandboxSettings

__all__ = [
    "BackendName",
    "BaseInterpreter",
    "BubblewrapSandbox",
    "Environments",
    "Mounts",
    "OutputBuffer",
    "RepoEnvironment",
    "Sandbox",
    "SandboxError",
    "SandboxResult",
    "SandboxUnavailable",
    "SetupFailed",
    "TestReport",
    "TestResults",
    "UnsandboxedRunner",
    "cgroups",
    "extract_summary",
    "failure_list",
    "make_sandbox",
    "parse_junit",
    "run_python",
    "run_test_command",
    "truncate_output",
    "truncation_marker",
]


def make_sandbox(settings: SandboxSettings, *, bwrap_path: str | Path | None = None) -> Sandbox:
    """The runner the settings ask for; raises SandboxUnavailable with the fix when it cannot be built."""
    if settings.backend == "unsandboxed":
        return UnsandboxedRunner(
            allow_unsandboxed=settings.allow_unsandboxed,
            timeout_s=settings.timeout_s,
            memory_mb=settings.memory_mb,
            output_limit_bytes=settings.output_limit_bytes,
            cpu_s=settings.cpu_s,
            max_processes=settings.max_processes,
            cgroups=settings.cgroups != "off",
        )
    sandbox = BubblewrapSandbox(
        bwrap_path=bwrap_path,
        timeout_s=settings.timeout_s,
        memory_mb=settings.memory_mb,
        output_limit_bytes=settings.output_limit_bytes,
        cpu_s=settings.cpu_s,
        max_processes=settings.max_processes,
        cgroups=settings.cgroups != "off",
    )
    reason = sandbox.unavailable_reason()
    if reason is not None:
        raise SandboxUnavailable(reason)
    return sandbox

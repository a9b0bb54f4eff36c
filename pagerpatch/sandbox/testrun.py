"""Run a repository's test command (or a Python script) in its environment, with per-test results when pytest or
`node --test` runs.

pytest is asked, through PYTEST_ADDOPTS, and node's test runner, through NODE_OPTIONS, for a JUnit XML report in a
results directory outside the worktree (bound writable), so nothing lands in the diff; node keeps its usual TAP
output on stdout. A runner that ignores both variables leaves only the exit code to go by.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pagerpatch.sandbox.environment import RepoEnvironment
from pagerpatch.sandbox.junit import TestResults, read_junit
from pagerpatch.sandbox.port import Sandbox, SandboxResult

__all__ = ["FAILED_TESTS_KEPT", "TestReport", "node_options", "pytest_options", "run_python", "run_test_command"]

FAILED_TESTS_KEPT = 50  # failing test ids an event carries
_REPORT = "report.xml"
_NODE_REPORT = "node-report.xml"
_SCRIPT = "pagerpatch_script.py"


@dataclass(frozen=True)
class TestReport:
    """What a test command did, and each test's outcome when the runner reported them (None: suite-level only)."""

    __test__ = False  # not a pytest class

    result: SandboxResult
    tests: TestResults | None = None

    @property
    def failed_tests(self) -> list[str]:
        """The first failing test ids (empty without per-test results)."""
        return self.tests.failed[:FAILED_TESTS_KEPT] if self.tests else []


def pytest_options(results: Path) -> str:
    """PYTEST_ADDOPTS for a run: a JUnit report naming each test's file (xunit1), and no cache in the tree."""
    return f"--junitxml={results / _REPORT} -o junit_family=xunit1 -p no:cacheprovider"


def node_options(results: Path) -> str:
    """NODE_OPTIONS for a run: `node --test` reports TAP on stdout as usual and JUnit XML into `results` (other node
    processes ignore the test-runner flags)."""
    return (
        "--test-reporter=tap --test-reporter-destination=stdout "
        f"--test-reporter=junit --test-reporter-destination={results / _NODE_REPORT}"
    )


@lru_cache(maxsize=1)
def _node_has_junit() -> bool:
    """Whether the system's node (the one the sandbox's /usr shows) has the JUnit reporter: 20.11 or newer (an older
    one would refuse the reporter and fail every test run, so it gets no NODE_OPTIONS)."""
    node = shutil.which("node", path="/usr/local/bin:/usr/bin:/bin")
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10) if node else None
    except (OSError, subprocess.TimeoutExpired):
        return False
    found = re.match(r"v(\d+)\.(\d+)", done.stdout if done else "")
    return found is not None and (int(found[1]), int(found[2])) >= (20, 11)


def _read_reports(results: Path) -> TestResults | None:
    """pytest's report, else node's (a repository runs one of them)."""
    found = read_junit(results / _REPORT)
    return found if found is not None else read_junit(results / _NODE_REPORT)


def _results_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pagerpatch-results-")).resolve()


async def run_test_command(
    sandbox: Sandbox, env: RepoEnvironment, command: str, tree: Path, *, timeout_s: float
) -> TestReport:
    """`command` in `tree` with `env`, the set-up's generated files copied in first; per-test results if any."""
    results = await asyncio.to_thread(_results_dir)
    try:
        await asyncio.to_thread(env.apply_overlay, tree)
        variables = {**env.variables(), "PYTEST_ADDOPTS": pytest_options(results)}
        if await asyncio.to_thread(_node_has_junit):
            variables["NODE_OPTIONS"] = node_options(results)
        result = await sandbox.run(
            command, tree, timeout_s=timeout_s, env=variables, mounts=env.mounts(writable=(results,))
        )
        tests = None if result.timed_out else await asyncio.to_thread(_read_reports, results)
        return TestReport(result, tests)
    finally:
        await asyncio.to_thread(shutil.rmtree, results, True)


async def run_python(
    sandbox: Sandbox, env: RepoEnvironment, script: str, tree: Path, *, timeout_s: float
) -> SandboxResult:
    """`python <script>` from `tree` with `env`; the script lives outside the tree, so the diff never shows it."""
    results = await asyncio.to_thread(_results_dir)
    try:
        await asyncio.to_thread(env.apply_overlay, tree)
        path = results / _SCRIPT
        await asyncio.to_thread(path.write_text, script)
        return await sandbox.run(
            f"python {path}", tree, timeout_s=timeout_s, env=env.variables(), mounts=env.mounts(read_only=(results,))
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, results, True)

"""In-memory fixgen ports for unit tests: a reverter (and patcher), a test runner and a fix agent that play back a
script and record calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pagerpatch.git.repos import MemoryRepos as MemoryRepos  # the registry port, shared by every stage
from pagerpatch.git.workspace import RevertResult
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.sandbox import BaseInterpreter, RepoEnvironment, SandboxResult, SetupFailed, TestReport, TestResults
from pagerpatch.sandbox.junit import TestOutcome
from pagerpatch.settings import RepoConfig
from services.fixgen.domain.patches import FixProposal
from services.fixgen.ports import AgentUnavailable, FixRequest

T = TypeVar("T")


def calc_diff(removed: str, added: str) -> str:
    """A revert's diff that changes one line of total() in app/calc.py, the scenario's failing function."""
    return (
        "diff --git a/app/calc.py b/app/calc.py\n--- a/app/calc.py\n+++ b/app/calc.py\n@@ -1,2 +1,2 @@\n"
        f" def total(items):\n-    {removed}\n+    {added}\n"
    )


DIFF = calc_diff("return sum(items) / 0", "return sum(items)")
# app/calc.py at the base commit and with the revert, as DIFF shows it.
CALC_SOURCES: dict[str, tuple[str | None, str | None]] = {
    "app/calc.py": ("def total(items):\n    return sum(items) / 0\n", "def total(items):\n    return sum(items)\n")
}
BASE_PURPOSE = "fix-base"


@dataclass
class ScriptedReverter:
    """Each `prepare` plays the next scripted step: a revert result, or an exception to raise.

    Every prepared worktree gets its own path, so a test can tell which ones were removed. `patches` gives a
    commit's revert its own diff (default `patch`), `sources` each file's text at the base and after the revert.
    """

    script: list[RevertResult | BaseException]
    patch: str = DIFF
    patches: dict[str, str] = field(default_factory=dict)
    sources: dict[str, tuple[str | None, str | None]] = field(default_factory=lambda: dict(CALC_SOURCES))
    checkout_errors: list[BaseException] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    checkouts: list[Path] = field(default_factory=list)
    prepared: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    diffs: list[tuple[Path, str]] = field(default_factory=list)
    commits: list[tuple[Path, str, str, str]] = field(default_factory=list)
    _reverted: dict[Path, str] = field(default_factory=dict)
    # the model-patch worktrees: `apply_errors` answers `check_patch` in turn (None: it applies)
    workspaces: list[Path] = field(default_factory=list)
    apply_errors: list[str | None] = field(default_factory=list)
    applied: list[tuple[Path, str]] = field(default_factory=list)
    written: list[tuple[Path, str, str]] = field(default_factory=list)
    committed: list[Path] = field(default_factory=list)

    @classmethod
    def reverting(cls, sha: str, *, after: Iterable[BaseException] = ()) -> ScriptedReverter:
        """A reverter whose revert of `sha` applies cleanly, after raising `after` one per attempt."""
        return cls([*after, RevertResult(ok=True, reverted=sha, commit="c" * 40)])

    async def refresh(self, repo: RepoConfig) -> None:
        self.refreshed.append(repo.name)

    async def checkout(self, repo: RepoConfig, incident_id: str, base_commit: str) -> Path:
        if self.checkout_errors:
            raise self.checkout_errors.pop(0)
        path = Path("/memory/worktrees", incident_id, f"{BASE_PURPOSE}-{len(self.checkouts) + 1}")
        self.checkouts.append(path)
        return path

    async def prepare(
        self, repo: RepoConfig, incident_id: str, base_commit: str, suspect_sha: str
    ) -> tuple[Path, RevertResult]:
        if not self.script:
            raise AssertionError("prepare called more often than scripted")
        step = self.script.pop(0)
        path = Path("/memory/worktrees", incident_id, f"fix-revert-{len(self.prepared) + 1}")
        if isinstance(step, BaseException):
            raise step
        self.prepared.append(path)
        self._reverted[path] = suspect_sha
        return path, step

    async def diff(self, worktree: Path, base_commit: str) -> str:
        self.diffs.append((worktree, base_commit))
        if worktree in self.workspaces:
            return "".join(patch for where, patch in self.applied if where == worktree) + "".join(
                _new_file(file, text) for where, file, text in self.written if where == worktree
            )
        patch = self.patches.get(self._reverted.get(worktree, ""), self.patch)
        for where, file, text, _ in self.commits:
            if where == worktree:
                patch += _new_file(file, text)
        return patch

    async def read_files(self, worktree: Path, rev: str, paths: Sequence[str]) -> dict[str, str | None]:
        side = 1 if rev == "HEAD" else 0
        return {path: self.sources[path][side] if path in self.sources else None for path in paths}

    async def commit_file(self, worktree: Path, path: str, text: str, message: str) -> None:
        self.commits.append((worktree, path, text, message))

    async def remove(self, worktree: Path) -> None:
        self.removed.append(worktree)

    async def workspace(self, repo: RepoConfig, incident_id: str, base_commit: str, purpose: str) -> Path:
        path = Path("/memory/worktrees", incident_id, purpose)
        self.workspaces.append(path)
        return path

    async def check_patch(self, worktree: Path, patch: str) -> str | None:
        return self.apply_errors.pop(0) if self.apply_errors else None

    async def apply_patch(self, worktree: Path, patch: str) -> None:
        self.applied.append((worktree, patch))

    async def write_file(self, worktree: Path, path: str, text: str) -> None:
        self.written.append((worktree, path, text))

    async def commit_paths(self, worktree: Path, paths: Sequence[str], message: str) -> None:
        self.committed.append(worktree)

    @property
    def leftover(self) -> list[Path]:
        """Worktrees made (base, reverted or patched) and never removed."""
        return [path for path in (*self.checkouts, *self.prepared, *self.workspaces) if path not in self.removed]


def _new_file(file: str, text: str) -> str:
    lines = text.splitlines()
    head = f"diff --git a/{file} b/{file}\nnew file mode 100644\n--- /dev/null\n+++ b/{file}\n"
    return head + f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)


@dataclass
class ScriptedFixAgent:
    """Answers each attempt with the next scripted proposal, or raises the scripted `AgentUnavailable`."""

    script: list[FixProposal | AgentUnavailable]
    requests: list[FixRequest] = field(default_factory=list)

    async def propose(self, request: FixRequest) -> FixProposal:
        self.requests.append(request)
        if not self.script:
            raise AgentUnavailable("the scripted fix agent has no more answers")
        step = self.script.pop(0)
        if isinstance(step, AgentUnavailable):
            raise step
        return step


MEMORY_ENV = RepoEnvironment(
    repo="memory", path=Path("/memory/envs/k"), key="k", interpreter=BaseInterpreter(Path("/py"), Path("/"), "3.11.0")
)

Scripted = SandboxResult | TestReport | BaseException


@dataclass
class ScriptedTestRunner:
    """Plays back test runs: `baseline` at the base commit (default: passing), then `afters` in order for the
    reverted worktrees, `outcome` once those are used up; `reproduction` answers the scripts ("base"/"after")."""

    outcome: Scripted
    baseline: Scripted | None = None
    afters: list[Scripted] = field(default_factory=list)
    reproduction: dict[str, SandboxResult] = field(default_factory=dict)
    setup_failure: str | None = None
    environments: list[tuple[str, Path]] = field(default_factory=list)
    runs: list[tuple[str, Path, float]] = field(default_factory=list)
    scripts: list[tuple[Path, str]] = field(default_factory=list)

    async def environment(self, repo: RepoConfig, tree: Path) -> RepoEnvironment:
        self.environments.append((repo.name, tree))
        if self.setup_failure is not None:
            raise SetupFailed(self.setup_failure)
        return MEMORY_ENV

    async def run_tests(self, env: RepoEnvironment, command: str, tree: Path, *, timeout_s: float) -> TestReport:
        self.runs.append((command, tree, timeout_s))
        if tree.name.startswith(BASE_PURPOSE):
            step = self.baseline if self.baseline is not None else sandbox_result(command, output="3 passed in 0.1s\n")
        else:
            step = self.afters.pop(0) if self.afters else self.outcome
        if isinstance(step, BaseException):
            raise step
        return step if isinstance(step, TestReport) else TestReport(step)

    async def run_python(self, env: RepoEnvironment, script: str, tree: Path, *, timeout_s: float) -> SandboxResult:
        self.scripts.append((tree, script))
        side = "base" if tree.name.startswith(BASE_PURPOSE) else "after"
        return self.reproduction[side]

    @property
    def after_runs(self) -> list[tuple[str, Path, float]]:
        """The runs made with a revert (not the baseline)."""
        return [run for run in self.runs if not run[1].name.startswith(BASE_PURPOSE)]


def sandbox_result(
    command: str, *, exit_code: int | None = 0, output: str = "", timed_out: bool = False
) -> SandboxResult:
    """A result as the unsandboxed runner would report it (the backend does not matter to fixgen)."""
    return SandboxResult(
        command=command,
        exit_code=exit_code,
        timed_out=timed_out,
        duration_s=1.25,
        output=output,
        backend="unsandboxed",
        output_bytes=len(output.encode()),
    )


def report(command: str, outcomes: dict[str, TestOutcome], *, output: str = "") -> TestReport:
    """A run with per-test results (`{"tests/test_a.py::test_x": "failed"}`); its exit code follows them."""
    failed = any(outcome == "failed" for outcome in outcomes.values())
    return TestReport(sandbox_result(command, exit_code=1 if failed else 0, output=output), TestResults(outcomes))


@dataclass
class RecordingBreakers:
    """The kernel's breakers (in-process), noting which dependency each call went through and what counted."""

    inner: Breakers = field(default_factory=Breakers)
    calls: list[tuple[str, tuple[type[BaseException], ...]]] = field(default_factory=list)

    async def call(
        self,
        dependency: str,
        fn: Callable[[], Awaitable[T]],
        *,
        failures: tuple[type[BaseException], ...] = (Exception,),
    ) -> T:
        self.calls.append((dependency, failures))
        return await self.inner.call(dependency, fn, failures=failures)

    @property
    def dependencies(self) -> list[str]:
        return [dependency for dependency, _ in self.calls]

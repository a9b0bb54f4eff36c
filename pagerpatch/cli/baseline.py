"""`repos add --check-tests`: the repository's test command at its default branch, run the way fixgen runs it.

The run happens in a temporary clone and worktree, in the repository's own environment, inside the configured
sandbox; what it says (how many pass and fail, the margin to the time limit) is the baseline every later fix is
compared with. `describe` is pure; `check_baseline` does the I/O.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pagerpatch.git import workspace
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.sandbox import (
    Environments,
    SandboxError,
    SandboxUnavailable,
    SetupFailed,
    TestReport,
    failure_list,
    make_sandbox,
    run_test_command,
)
from pagerpatch.settings import RepoConfig, Settings

# A suite that used more than this share of its limit may time out under load (94 s outside, 181 s inside seen).
TIGHT_MARGIN = 0.5
NOT_FOUND_EXIT_CODES = (126, 127)  # the shell could not run the command at all


@dataclass(frozen=True)
class Baseline:
    """What `repos add` reports: `ran` is False when the test command could not run at all (nothing to compare
    a fix with); `checked` is False when no sandbox was available to run it in."""

    ran: bool
    lines: list[str] = field(default_factory=list)
    checked: bool = True


def describe(report: TestReport, *, branch: str, sha: str, timeout_s: float) -> Baseline:
    """The baseline in a few lines: counts of passing and failing tests, the failing ones by id, the margin."""
    result = report.result
    where = f"at {branch} ({sha[:12]}) with `{result.command}` in {result.backend}"
    if result.timed_out:
        limit = f"limit {timeout_s:.0f}s"
        return Baseline(
            False,
            [f"the tests timed out {where} after {result.duration_s:.0f}s ({limit}): raise --test-timeout-s",
             f"last output: {result.summary}"],
        )  # fmt: skip
    tests = report.tests
    counted = tests is not None and bool(tests.outcomes)
    if not counted and result.exit_code not in (0, 1):
        why = "the command was not found" if result.exit_code in NOT_FOUND_EXIT_CODES else "no test results"
        return Baseline(False, [f"the test command did not run {where}: exit {result.exit_code}, {why}",
                                f"last output: {result.summary}"])  # fmt: skip
    if tests is not None and counted:
        skipped = len(tests.outcomes) - len(tests.passed) - len(tests.failed)
        counts = f"{len(tests.passed)} passed, {len(tests.failed)} failed" + (f", {skipped} skipped" if skipped else "")
    else:
        counts = f"{'passed' if result.passed else 'failed'} (exit {result.exit_code}; no per-test results)"
    lines = [f"baseline {where}: {counts} in {result.duration_s:.1f}s (limit {timeout_s:.0f}s)"]
    if tests is not None and tests.failed:
        lines.append(
            f"  failing at the base, so only new failures count against a fix: {failure_list(tests.failed, shown=5)}"
        )
    elif not counted and not result.passed:
        lines.append("  the suite fails at the base: only a check that fails here and passes after proves a fix")
    if result.duration_s > TIGHT_MARGIN * timeout_s:
        lines.append(f"  warning: the run used {result.duration_s / timeout_s:.0%} of its time limit; under load it "
                     "can take twice as long (raise --test-timeout-s)")  # fmt: skip
    return Baseline(True, lines)


def timeout_for(settings: Settings, repo: RepoConfig) -> float:
    """The repository's own test limit when it has one, else the sandbox's (as fixgen decides)."""
    return repo.test_timeout_s if repo.test_timeout_s is not None else settings.sandbox.timeout_s


async def check_baseline(settings: Settings, repo: RepoConfig) -> Baseline:
    """Run the test command at `repo.default_branch` in a temporary worktree, in the configured sandbox."""
    try:
        sandbox = make_sandbox(settings.sandbox)
    except SandboxUnavailable as exc:
        return Baseline(True, [f"warning: the baseline was not checked: no sandbox is available ({exc})"], False)
    scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="pagerpatch-repos-add-"))
    try:
        # A bubblewrap environment is location-independent (the tree always appears at /workspace/<repo>), so it is
        # made where fixgen looks and warms its cache; an unsandboxed set-up records this temporary tree's paths,
        # so it stays in the scratch folder and is removed with it.
        shared = sandbox.backend == "bubblewrap"
        environments = Environments(settings.state_dir / "envs" if shared else scratch / "envs", sandbox)
        workspaces = Workspaces(scratch / "workspaces")
        try:
            tree = await asyncio.to_thread(workspaces.worktree, repo, "repos-add", repo.default_branch, "baseline")
            sha = await asyncio.to_thread(workspace.resolve, tree, "HEAD")
            env = await environments.ensure(repo, tree)
        except SetupFailed as exc:
            return Baseline(False, [f"the set-up command failed at {repo.default_branch}: {exc}"])
        except (SandboxError, workspace.GitError) as exc:
            return Baseline(False, [f"could not prepare {repo.default_branch} to run its tests: {exc}"])
        timeout_s = timeout_for(settings, repo)
        report = await run_test_command(sandbox, env, repo.test_command, tree, timeout_s=timeout_s)
        return describe(report, branch=repo.default_branch, sha=sha, timeout_s=timeout_s)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)

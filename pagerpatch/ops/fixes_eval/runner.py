"""`pagerpatch eval fixes`, end to end: build the scenarios, run their alerts through the pipeline, and judge each
fix with the scenario's oracle test.

By default the stages run in this process through the replay chain, without the bus (`inprocess`); with
`stack=True` (`--stack`) through an embedded stack of their own, over NATS and Postgres (`stack`). Either way the
outcome is read from the incident's events and judged the same way.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pagerpatch.git.workspace import git
from pagerpatch.ops.fixes_eval.history import BuiltScenario, Scenario, build, write_generated
from pagerpatch.ops.fixes_eval.inprocess import ChainsMissing, through_the_chain
from pagerpatch.ops.fixes_eval.oracle import check_fix, oracle_at, pr_patch
from pagerpatch.ops.fixes_eval.report import EvalReport, OracleTarget, OracleVerdict, ScenarioResult
from pagerpatch.ops.fixes_eval.stack import EvalError, EventLog, through_the_stack
from pagerpatch.ops.fixes_eval.tracked import Tracked
from pagerpatch.settings import Settings

__all__ = ["DEFAULT_TIMEOUT_S", "EVAL_DIR", "EvalError", "EventLog", "run_fixes_eval"]

EVAL_DIR = "eval-fixes"  # under the state folder: the evaluation's repositories, scratch checkouts (and stack)
DEFAULT_TIMEOUT_S = 180.0

Say = Callable[[str], None]


async def run_fixes_eval(
    settings: Settings, scenarios: Sequence[Scenario], *, timeout_s: float = DEFAULT_TIMEOUT_S, say: Say,
    stack: bool = False,
) -> EvalReport:  # fmt: skip
    """Run `scenarios` through the pipeline (in this process, or with `stack` on a stack of their own) and return
    the report; raises EvalError when it cannot run."""
    started = time.monotonic()
    run = uuid.uuid4().hex[:10]
    home = settings.state_dir / EVAL_DIR
    repos_dir, scratch, installed = home / "repos", home / "scratch", home / "installed"
    for folder in (repos_dir, scratch, installed):
        await asyncio.to_thread(shutil.rmtree, folder, True)
    say(f"== building {len(scenarios)} scenario repositories under {repos_dir}")
    built = [await asyncio.to_thread(build, s, repos_dir / s.name) for s in scenarios]
    valid = {b.scenario.name: not (await asyncio.to_thread(oracle_at, b, b.head, scratch)).passed for b in built}
    probe = await asyncio.to_thread(_installed_copies, built, installed)
    if stack:
        tracked = await through_the_stack(settings, home, built, run, timeout_s, probe, say)
    else:
        try:
            tracked = await through_the_chain(settings, home, built, run, timeout_s, probe, say)
        except ChainsMissing as exc:
            raise EvalError(str(exc)) from exc
    say("== judging each fix with its scenario's oracle test (outside the repository, on a clean checkout)")
    results = [await asyncio.to_thread(_judge, t, valid[t.built.scenario.name], scratch) for t in tracked]
    return EvalReport(run, tuple(results), time.monotonic() - started)


def _judge(t: Tracked, oracle_valid: bool, scratch: Path) -> ScenarioResult:
    """The scenario's result: the outcome, and the oracle's verdict on the pull request (or the pending fix)."""
    b, s, outcome = t.built, t.built.scenario, t.outcome()
    if t.problem and outcome.outcome == "none":
        outcome = replace(outcome, detail=t.problem)
    target: OracleTarget = "none"
    patch: str | None = None
    verdict = OracleVerdict("none", None, "no fix to judge")
    if outcome.pr_branch and outcome.pr_url:
        target = "pr"
        remote = outcome.pr_url.removeprefix("file://").split("?")[0]
        patch = pr_patch(b, remote, outcome.pr_branch, scratch)
        if patch is None:
            verdict = OracleVerdict("pr", None, f"the pull request's branch cannot be read from {remote}")
    elif outcome.patch is not None and outcome.outcome in ("proved", "unproven"):
        target, patch = "pending", outcome.patch
    cosmetic = None
    if patch is not None:
        check = check_fix(b, patch, scratch)
        verdict = OracleVerdict(target, check.fixes, check.detail)
        cosmetic = check.cosmetic
    if outcome.reverted is not None and outcome.reverted in b.cosmetic_shas:
        cosmetic = cosmetic or f"it reverts {outcome.reverted[:8]}, a commit that changes no behaviour"
    seconds = (t.finished_at or time.monotonic()) - t.posted_at
    return ScenarioResult(s.name, s.letter, s.expected, b.bug_sha, outcome, verdict, oracle_valid, cosmetic,
                          s.mentions, seconds, s.language)  # fmt: skip


def _installed_copies(built: Sequence[BuiltScenario], folder: Path) -> Path | None:
    """The pre-bug packages of the scenarios that ask for it, where pagerpatch's own processes can import them: what
    the repository's tests would wrongly import if pagerpatch's environment leaked into the sandbox."""
    wanted = [b for b in built if b.scenario.installed_copy]
    for b in wanted:
        parent = git(b.path, "rev-parse", f"{b.bug_sha}^").strip()
        root = b.scenario.code_root.strip("/")
        prefix = f"{root}/" if root else ""
        for rel in git(b.path, "ls-tree", "-r", "--name-only", parent, "--", root or ".").splitlines():
            target = folder / rel.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(git(b.path, "show", f"{parent}:{rel}"), encoding="utf-8")
        write_generated(folder, replace(b.scenario, generated={
            rel.removeprefix(prefix): content for rel, content in b.scenario.generated.items()
        }))  # fmt: skip
    return folder if wanted else None

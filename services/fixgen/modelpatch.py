"""The model-patch strategy (docs/fixgen.md): the fix agent writes a patch and a regression test; fixgen proves
them in the sandbox, up to `fixgen.max_attempts` times.

Each attempt, in a fresh worktree at the base commit: ask the agent (its read-only tools look at that worktree),
turn its answer into a diff, keep the policy limits, `git apply --check`, then reproduce first (only the regression
test's file, at the base: it must fail with the alert's exception or an assertion), apply the fix, the regression
test must pass, and the repository's whole suite must not get worse than its baseline. A failed attempt's reason
and failing output go to the next one, nothing older. The agent being unavailable ends the attempts at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pagerpatch.sandbox import TestReport
from pagerpatch.settings import RepoConfig
from schemas.events import DiagnosisReadyPayload, FixValidatedPayload, TestRun
from schemas.fixes import AttemptOutcome, FixAttempt
from services.fixgen import domain
from services.fixgen.domain import attempts as record
from services.fixgen.domain.patches import (
    BuiltPatch,
    FixProposal,
    PatchProblem,
    build_patch,
    changed_paths,
    proposal_paths,
)
from services.fixgen.domain.policy import PatchPolicy, policy_refusal
from services.fixgen.domain.prompt import Feedback, fix_prompt
from services.fixgen.domain.regression import Reproduced, base_run_reproduces, judge_patch, regression_command
from services.fixgen.ports import (
    GIT_FAILURES,
    SANDBOX_FAILURES,
    AgentUnavailable,
    CircuitBreakers,
    FixAgent,
    FixRequest,
    Patcher,
    RepoEnvironment,
    TestRunner,
)

PURPOSE = "fix-agent"  # worktree folder per attempt: fix-agent-1, fix-agent-2, ...


@dataclass(frozen=True)
class PatchContext:
    """One incident's fixed inputs: the diagnosis, the repository's environment and baseline, what came before."""

    diagnosis: DiagnosisReadyPayload
    repo: RepoConfig
    incident: str
    runner: TestRunner
    breakers: CircuitBreakers
    env: RepoEnvironment
    baseline: TestReport
    timeout_s: float
    earlier: tuple[FixAttempt, ...] = ()
    team: str | None = None  # the incident's team: its budget binds the agent too


@dataclass
class PatchRun:
    """What the attempts came to: the fix (or None), each attempt, the test runs made, why the agent was missing."""

    log: list[FixAttempt] = field(default_factory=list)
    validated: FixValidatedPayload | None = None
    test_runs: int = 0
    last_run: TestRun | None = None
    unavailable: str | None = None


@dataclass(frozen=True)
class _Failed:
    outcome: AttemptOutcome
    reason: str
    output: str = ""


@dataclass(frozen=True)
class ModelPatcher:
    """The strategy's ports and limits."""

    agent: FixAgent
    patcher: Patcher
    policy: PatchPolicy = field(default_factory=PatchPolicy)
    max_attempts: int = 3

    async def run(self, ctx: PatchContext) -> PatchRun:
        run = PatchRun()
        feedback: Feedback | None = None
        first = len(ctx.earlier) + 1
        base = ctx.diagnosis.base_commit
        for n in range(1, self.max_attempts + 1):

            async def checkout(purpose: str = f"{PURPOSE}-{n}") -> Path:
                return await self.patcher.workspace(ctx.repo, ctx.incident, base, purpose)

            path = await ctx.breakers.call(f"git:{ctx.repo.name}", checkout, failures=GIT_FAILURES)
            try:
                proposal, result = await self._attempt(ctx, run, n, path, feedback)
            finally:
                await self.patcher.remove(path)
            if isinstance(result, FixValidatedPayload):
                files = list(result.files_changed)
                run.log.append(record.attempt(first + n - 1, record.MODEL_PATCH, result.proof, result.proof_detail,
                                              proposal.summary if proposal else "", files))  # fmt: skip
                run.validated = result
                return run
            summary = proposal.summary if proposal is not None else ""
            files = proposal_paths(proposal) if proposal is not None else []
            failed = record.attempt(first + n - 1, record.MODEL_PATCH, result.outcome, result.reason, summary, files)
            run.log.append(failed)
            if result.outcome == "unavailable":
                run.unavailable = result.reason
                return run
            feedback = Feedback(failed, result.output)
        return run

    async def _attempt(
        self, ctx: PatchContext, run: PatchRun, n: int, path: Path, feedback: Feedback | None
    ) -> tuple[FixProposal | None, FixValidatedPayload | _Failed]:
        d = ctx.diagnosis
        prompt = fix_prompt(d, attempt=n, attempts=self.max_attempts, earlier=ctx.earlier, feedback=feedback)
        try:
            proposal = await self.agent.propose(FixRequest(prompt, path, d.base_commit, ctx.incident, ctx.team))
        except AgentUnavailable as exc:
            return None, _Failed("unavailable", str(exc) or type(exc).__name__)
        paths = proposal_paths(proposal)

        async def read() -> dict[str, str | None]:
            return await self.patcher.read_files(path, d.base_commit, paths)

        originals = await ctx.breakers.call(f"git:{ctx.repo.name}", read, failures=GIT_FAILURES)
        built = build_patch(proposal, originals)
        if isinstance(built, PatchProblem):
            return proposal, _Failed("refused" if built.refused else "failed", built.reason)
        refusal = policy_refusal(built.files, built.added, built.removed, self.policy)
        if refusal is not None:
            return proposal, _Failed("refused", refusal)

        async def check() -> str | None:
            return await self.patcher.check_patch(path, built.fix_diff)

        problem = await ctx.breakers.call(f"git:{ctx.repo.name}", check, failures=GIT_FAILURES)
        if problem is not None:
            return proposal, _Failed("failed", f"the patch does not apply (git apply --check): {problem.strip()}")
        return proposal, await self._prove(ctx, run, n, path, proposal, built)

    async def _prove(
        self, ctx: PatchContext, run: PatchRun, n: int, path: Path, proposal: FixProposal, built: BuiltPatch
    ) -> FixValidatedPayload | _Failed:
        """Reproduce at the base, apply the fix, then the regression test and the whole suite with it."""
        d, test = ctx.diagnosis, proposal.regression_test
        command = regression_command(test.path) if test is not None else None
        if test is None:
            why = proposal.no_reproduction_reason or "none given"
            reproduced = Reproduced(None, f"NO REPRODUCTION: the fix agent wrote no regression test ({why})")
        elif command is None:
            reproduced = Reproduced(None, f"NO REPRODUCTION: fixgen cannot run {test.path} on its own")
        else:
            try:
                await self.patcher.write_file(path, test.path, test.content)
            except ValueError as exc:  # the path leads out of the worktree, or is a folder there
                return _Failed("refused", str(exc))
            reproduced = base_run_reproduces(await self._tests(ctx, run, command, path), test.path, d.exception_type)
        await self._git(ctx, lambda: self.patcher.apply_patch(path, built.fix_diff))
        if test is not None and command is not None:
            with_fix = await self._tests(ctx, run, command, path)
            if not with_fix.result.passed:
                reason = f"the regression test {test.path} still fails with the fix: {with_fix.result.summary}"
                return _Failed("failed", reason, with_fix.result.output)
        suite = await self._tests(ctx, run, ctx.repo.test_command, path)
        refusal, fixed = judge_patch(ctx.baseline, suite)
        if refusal is not None:
            return _Failed("failed", refusal, suite.result.output)
        message = f"{proposal.summary}\n\npagerpatch fix agent"
        await self._git(ctx, lambda: self.patcher.commit_paths(path, changed_paths(built), message))
        patch = await self.patcher.diff(path, d.base_commit)
        removed = domain.removed_tests(ctx.baseline, suite, domain.removed_test_defs(patch))
        return record.patch_validated(
            d, incident_id=ctx.incident, summary=proposal.summary, patch=patch, base=ctx.baseline, after=suite,
            fixed=fixed, reproduced=reproduced, regression_test=test.content if test else None, attempts=n,
            removed_tests=removed,
        )  # fmt: skip

    async def _tests(self, ctx: PatchContext, run: PatchRun, command: str, path: Path) -> TestReport:
        async def go() -> TestReport:
            return await ctx.runner.run_tests(ctx.env, command, path, timeout_s=ctx.timeout_s)

        report = await ctx.breakers.call("sandbox", go, failures=SANDBOX_FAILURES)
        run.test_runs += 1
        run.last_run = domain.test_run_of(report)
        return report

    async def _git(self, ctx: PatchContext, step: Callable[[], Awaitable[None]]) -> None:
        await ctx.breakers.call(f"git:{ctx.repo.name}", step, failures=GIT_FAILURES)

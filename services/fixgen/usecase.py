"""Fixgen's use case: the strategy chain. revert-and-test first (below); when no revert is proved and a model is
configured, the fix agent's patches (`modelpatch.py`); docs/fixgen.md says what each answer means.

revert-and-test reverts the diagnosed commits in turn and keeps a revert only when the tests back it.

First the base commit as it is: the repository's environment (set up once per dependency hash), the test command
there (the baseline) and, when the alert captured the failing frame's arguments, the reproduction. Then each
candidate (the suspect, then the diagnosis's other candidates) in a fresh worktree: a conflict, an empty or
cosmetic revert, one off the stack trace's files, or one that breaks tests is set aside with its reason and the
next is tried; the first that is proved or unproven (never refused) becomes fix.validated, saying which.

A verdict about a commit is a fix.failed payload; a failure of our own dependencies (git, the sandbox) is raised
through their breakers, so the message waits and is tried again. Runs on git and the sandbox in the service, and
on memory ports in tests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pagerpatch.git.workspace import GitError
from pagerpatch.settings import RepoConfig
from schemas.events import (
    DiagnosisReadyPayload,
    FixFailedPayload,
    FixValidatedPayload,
    SuspectCommit,
    TestRun,
)
from schemas.fixes import FixAttempt
from services.fixgen import domain
from services.fixgen.domain import attempts as record
from services.fixgen.domain import reproduction
from services.fixgen.domain.reproduction import Reproduction, ReproductionOutcome
from services.fixgen.modelpatch import ModelPatcher, PatchContext
from services.fixgen.ports import (
    GIT_FAILURES,
    SANDBOX_FAILURES,
    CircuitBreakers,
    RepoEnvironment,
    RepoLookup,
    Reverter,
    RevertResult,
    SandboxResult,
    SetupFailed,
    TestReport,
    TestRunner,
)
from services.fixgen.settings import repo_timeout_s

log = logging.getLogger(__name__)

T = TypeVar("T")
FixOutcome = FixValidatedPayload | FixFailedPayload

MAX_TEST_RUNS = 3  # candidates whose tests are run before fixgen gives up (cheaper refusals are not counted)
BASELINES_KEPT = 32  # baseline runs remembered per process, by (repo, base commit, environment, test command)
REPRODUCTION_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Baseline:
    """The base commit as it is: its environment, its test run, and what the reproduction did there."""

    env: RepoEnvironment
    tests: TestReport
    reproduced: tuple[ReproductionOutcome, str] | None


@dataclass
class _Attempts:
    """What the candidates so far came to: each one's reason (and attempt), the test runs made, the last run."""

    tried: list[str] = field(default_factory=list)
    test_runs: int = 0
    last_run: TestRun | None = None
    log: list[FixAttempt] = field(default_factory=list)

    def set_aside(self, suspect: SuspectCommit, reason: str) -> None:
        self.tried.append(domain.tried_entry(suspect, reason))
        summary = record.revert_summary(suspect)
        self.log.append(record.attempt(len(self.log) + 1, record.REVERT, "failed", reason, summary))


@dataclass(frozen=True)
class _Context:
    """One incident's fixed inputs, handed to each candidate's attempt."""

    diagnosis: DiagnosisReadyPayload
    repo: RepoConfig
    incident: str
    runner: TestRunner
    breakers: CircuitBreakers
    baseline: Baseline
    plan: Reproduction | str
    timeout_s: float


@dataclass(frozen=True)
class _RevertRun:
    """revert-and-test's outcome, and what the model patch reuses: the baseline (None when it was never made),
    the reproduction plan and the attempts. `final`: nothing else can run (no sandbox, a failed set-up)."""

    outcome: FixOutcome
    baseline: Baseline | None
    plan: Reproduction | str
    attempts: _Attempts
    final: bool = False


@dataclass(frozen=True)
class FixGenerator:
    """Fixgen's ports and test limit (what the service's handler gets as its deps)."""

    repos: RepoLookup
    reverter: Reverter
    tests: TestRunner | None  # None when no sandbox can be built; `sandbox_problem` says why
    sandbox_problem: str | None
    timeout_s: float
    baselines: dict[tuple[str, ...], TestReport] = field(default_factory=dict, compare=False, repr=False)
    model: ModelPatcher | None = None  # the model-patch strategy, when a model is configured

    async def generate(
        self,
        diagnosis: DiagnosisReadyPayload,
        repo: RepoConfig,
        incident_id: uuid.UUID,
        breakers: CircuitBreakers,
        *,
        team: str | None = None,
    ) -> FixOutcome:
        """The strategy chain: a proved revert; else the fix agent's patches (when a model is configured, spending
        under the incident and its `team`'s budget); else the unproven revert, or fix.failed with every attempt's
        reason (docs/fixgen.md)."""
        run = await self._revert_run(diagnosis, repo, incident_id, breakers)
        revert = run.outcome
        attempt_log = list(run.attempts.log)
        if isinstance(revert, FixValidatedPayload):
            attempt_log.append(record.revert_validated(len(attempt_log) + 1, revert))
            at_base = run.baseline.reproduced if run.baseline is not None else None
            plan_reason = run.plan if isinstance(run.plan, str) else None
            reproduced, note = record.revert_reproduction(revert.regression_test, plan_reason, at_base)
            revert = record.with_log(revert, attempt_log, reproduced=reproduced, reproduction_note=note)
            if revert.proof == "proved":
                return revert
        else:
            attempt_log = attempt_log or [record.attempt(1, record.REVERT, "failed", revert.reason)]
            revert = revert.model_copy(update={"attempt_log": attempt_log})
        if self.model is None or run.final:
            return revert
        ctx = await self._patch_context(diagnosis, repo, str(incident_id), breakers, run, attempt_log, team)
        if isinstance(ctx, FixFailedPayload):
            return ctx.model_copy(update={"attempt_log": attempt_log})
        patched = await self.model.run(ctx)
        attempt_log += patched.log
        if patched.validated is not None:
            return record.with_log(patched.validated, attempt_log)
        if isinstance(revert, FixValidatedPayload):
            return record.with_log(revert, attempt_log)
        return record.chain_failed(
            diagnosis.repo, attempt_log, revert, test_runs=patched.test_runs, last_run=patched.last_run,
            unavailable=patched.unavailable,
        )  # fmt: skip

    async def _patch_context(
        self,
        diagnosis: DiagnosisReadyPayload,
        repo: RepoConfig,
        incident: str,
        breakers: CircuitBreakers,
        run: _RevertRun,
        earlier: list[FixAttempt],
        team: str | None,
    ) -> PatchContext | FixFailedPayload:
        """The model patch's inputs; the baseline is made here when the revert never got that far (no suspect)."""
        runner = self.tests
        assert runner is not None  # a run without a sandbox is final
        timeout = repo_timeout_s(repo, self.timeout_s)
        baseline = run.baseline
        if baseline is None:
            try:
                baseline = await self._baseline(diagnosis, repo, incident, runner, breakers, run.plan, timeout)
            except SetupFailed as exc:
                return domain.fix_failed(diagnosis.repo, domain.setup_reason(str(exc)))
        return PatchContext(
            diagnosis, repo, incident, runner, breakers, baseline.env, baseline.tests, timeout, tuple(earlier), team
        )

    async def revert_and_test(
        self, diagnosis: DiagnosisReadyPayload, repo: RepoConfig, incident_id: uuid.UUID, breakers: CircuitBreakers
    ) -> FixOutcome:
        """fix.validated for the first candidate whose revert is proved or unproven, else fix.failed with them all."""
        return (await self._revert_run(diagnosis, repo, incident_id, breakers)).outcome

    async def _revert_run(
        self, diagnosis: DiagnosisReadyPayload, repo: RepoConfig, incident_id: uuid.UUID, breakers: CircuitBreakers
    ) -> _RevertRun:
        """Each candidate's revert in turn; the outcome with what the next strategy needs (baseline, attempts)."""
        candidates = domain.candidates_of(diagnosis)
        trace = domain.trace_files(diagnosis)
        plan = reproduction.plan(diagnosis, trace)
        attempts = _Attempts()
        runner = self.tests
        if not candidates:
            failed = domain.fix_failed(diagnosis.repo, domain.no_suspect_reason(diagnosis.tried))
            return _RevertRun(failed, None, plan, attempts, final=runner is None)
        if runner is None:
            failed = domain.fix_failed(diagnosis.repo, domain.no_sandbox_reason(self.sandbox_problem))
            return _RevertRun(failed, None, plan, attempts, final=True)
        incident = str(incident_id)
        timeout = repo_timeout_s(repo, self.timeout_s)
        try:
            baseline = await self._baseline(diagnosis, repo, incident, runner, breakers, plan, timeout)
        except SetupFailed as exc:
            failed = domain.fix_failed(diagnosis.repo, domain.setup_reason(str(exc)))
            return _RevertRun(failed, None, plan, attempts, final=True)
        ctx = _Context(diagnosis, repo, incident, runner, breakers, baseline, plan, timeout)
        for suspect in candidates:
            if attempts.test_runs >= MAX_TEST_RUNS:
                reason = f"not tried: {MAX_TEST_RUNS} candidates' tests already ran"
                attempts.set_aside(suspect, reason)
                continue
            outcome = await self._attempt(ctx, suspect, attempts)
            if outcome is not None:
                return _RevertRun(outcome, baseline, plan, attempts)
        reason = domain.nothing_fixes_reason(attempts.tried)
        failed = domain.fix_failed(diagnosis.repo, reason, attempts.test_runs, attempts.last_run, attempts.tried)
        return _RevertRun(failed, baseline, plan, attempts)

    async def _baseline(
        self,
        diagnosis: DiagnosisReadyPayload,
        repo: RepoConfig,
        incident: str,
        runner: TestRunner,
        breakers: CircuitBreakers,
        plan: Reproduction | str,
        timeout_s: float,
    ) -> Baseline:
        """The environment, the baseline run (remembered) and the reproduction, in a worktree at the base commit."""

        async def checkout() -> Path:
            await self.reverter.refresh(repo)
            return await self._retrying(lambda: self.reverter.checkout(repo, incident, diagnosis.base_commit), incident)

        path = await breakers.call(f"git:{repo.name}", checkout, failures=GIT_FAILURES)
        try:
            env = await breakers.call("sandbox", lambda: runner.environment(repo, path), failures=SANDBOX_FAILURES)
            key = (repo.name, diagnosis.base_commit, env.key, repo.test_command)
            tests = self.baselines.get(key)
            if tests is None:

                async def run() -> TestReport:
                    return await runner.run_tests(env, repo.test_command, path, timeout_s=timeout_s)

                tests = await breakers.call("sandbox", run, failures=SANDBOX_FAILURES)
                self._remember(key, tests)
            reproduced = None
            if isinstance(plan, Reproduction):
                reproduced = await self._reproduce(runner, breakers, env, plan, path, timeout_s)
            return Baseline(env, tests, reproduced)
        finally:
            await self.reverter.remove(path)

    async def _attempt(self, ctx: _Context, suspect: SuspectCommit, attempts: _Attempts) -> FixValidatedPayload | None:
        """Revert `suspect` and judge it: the fix, or None with its reason added to `attempts`."""
        base = ctx.diagnosis.base_commit

        async def prepare() -> tuple[Path, RevertResult]:
            return await self._retrying(
                lambda: self.reverter.prepare(ctx.repo, ctx.incident, base, suspect.sha), ctx.incident
            )

        path, reverted = await ctx.breakers.call(f"git:{ctx.repo.name}", prepare, failures=GIT_FAILURES)
        try:
            if not reverted.ok:
                attempts.set_aside(suspect, domain.revert_refusal(suspect.sha, reverted))
                return None
            patch = await self.reverter.diff(path, base)
            changed = domain.python_files(patch)
            before = await self.reverter.read_files(path, base, changed)
            after = await self.reverter.read_files(path, "HEAD", changed)
            refusal = domain.change_refusal(suspect.sha, patch, domain.trace_files(ctx.diagnosis), before, after)
            if refusal is not None:
                attempts.set_aside(suspect, refusal)
                return None
            return await self._judge(ctx, suspect, path, patch, attempts)
        finally:
            await self.reverter.remove(path)

    async def _judge(
        self, ctx: _Context, suspect: SuspectCommit, path: Path, patch: str, attempts: _Attempts
    ) -> FixValidatedPayload | None:
        """Run the tests (and the reproduction) with the revert and compare with the baseline."""
        env, runner = ctx.baseline.env, ctx.runner

        async def run() -> TestReport:
            return await runner.run_tests(env, ctx.repo.test_command, path, timeout_s=ctx.timeout_s)

        report = await ctx.breakers.call("sandbox", run, failures=SANDBOX_FAILURES)
        attempts.test_runs += 1
        attempts.last_run = domain.test_run_of(report)
        check = await self._reproduction_check(ctx, path)
        verdict = domain.judge(suspect.sha, ctx.baseline.tests, report, check)
        if verdict.kind == "refused":
            attempts.set_aside(suspect, verdict.detail)
            return None
        regression = None
        if verdict.by_reproduction and isinstance(ctx.plan, Reproduction):
            file, regression = reproduction.regression_test(ctx.plan, ctx.incident)
            message = f"Add a regression test for incident {ctx.incident}\n\n{check.detail if check else ''}"

            async def commit() -> None:
                await self.reverter.commit_file(path, file, regression or "", message)

            await ctx.breakers.call(f"git:{ctx.repo.name}", commit, failures=GIT_FAILURES)
            patch = await self.reverter.diff(path, ctx.diagnosis.base_commit)
        removed = domain.removed_tests(ctx.baseline.tests, report, domain.removed_test_defs(patch))
        return domain.fix_validated(
            ctx.diagnosis,
            suspect,
            ctx.repo.name,
            patch,
            attempts.last_run,
            ctx.incident,
            verdict=verdict,
            base_tests=domain.test_run_of(ctx.baseline.tests),
            removed_tests=removed,
            regression_test=regression,
            attempts=attempts.test_runs,
        )

    async def _reproduction_check(self, ctx: _Context, path: Path) -> domain.ReproductionCheck:
        """The reproduction after the revert, when it raised the alert's exception at the base; else why not."""
        if not isinstance(ctx.plan, Reproduction):
            return domain.ReproductionCheck(False, ctx.plan)
        at_base = ctx.baseline.reproduced
        assert at_base is not None  # planned reproductions always run at the base
        after = None
        if at_base[0] == "raised":
            after = await self._reproduce(ctx.runner, ctx.breakers, ctx.baseline.env, ctx.plan, path, ctx.timeout_s)
        return reproduction.check(ctx.plan, at_base, after)

    async def _reproduce(
        self,
        runner: TestRunner,
        breakers: CircuitBreakers,
        env: RepoEnvironment,
        plan: Reproduction,
        path: Path,
        timeout_s: float,
    ) -> tuple[ReproductionOutcome, str]:
        async def run() -> SandboxResult:
            limit = min(timeout_s, REPRODUCTION_TIMEOUT_S)
            return await runner.run_python(env, reproduction.script(plan), path, timeout_s=limit)

        return reproduction.outcome_of(await breakers.call("sandbox", run, failures=SANDBOX_FAILURES))

    def _remember(self, key: tuple[str, ...], tests: TestReport) -> None:
        self.baselines[key] = tests
        while len(self.baselines) > BASELINES_KEPT:
            del self.baselines[next(iter(self.baselines))]

    async def _retrying(self, step: Callable[[], Awaitable[T]], incident: str) -> T:
        """`step`, retrying our own hiccups in place; what is left is raised for the breaker."""
        attempt = 1
        while True:
            try:
                return await step()
            except (GitError, FileNotFoundError) as exc:
                if not domain.retry_preparation(exc, attempt):
                    raise
                log.warning("fixgen: preparing a worktree for %s failed (%s); retrying", incident, exc)
                attempt += 1

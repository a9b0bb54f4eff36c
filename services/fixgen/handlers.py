"""Fixgen handler: revert the suspect commit and run the repository's real tests in the sandbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pagerpatch.git import workspace
from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from pagerpatch.sandbox import SandboxError
from schemas.envelope import Event
from schemas.events import DiagnosisReady, FixFailed, FixFailedPayload, FixValidated, FixValidatedPayload
from services.fixgen import logic
from services.fixgen.settings import FixgenDeps

log = logging.getLogger(__name__)
service: Service[FixgenDeps] = Service("fixgen")
STRATEGY = "revert-and-test"
PREPARE_ATTEMPTS = 3  # fresh worktrees tried in place before the breaker's slower retry takes over


@service.handler("fixgen", DiagnosisReady)
async def on_diagnosis(event: DiagnosisReady, ctx: StageContext[FixgenDeps]) -> Sequence[Event[Any]]:
    d = event.payload
    incident_id = incident_id_of(event)
    repo = await ctx.deps.repos.require(d.repo)

    def failed(reason: str, attempts: int = 0, tests: Any = None) -> list[Event[Any]]:
        payload = FixFailedPayload(repo=d.repo, reason=reason[:20_000], attempts=attempts, tests=tests)
        return [event.derive(FixFailed, payload, stage="fixgen")]

    if d.suspect_commit is None:
        return failed("the diagnosis names no suspect commit, so there is nothing to revert")
    if ctx.deps.sandbox is None:
        return failed(ctx.deps.sandbox_problem or "no sandbox is available to run the tests")
    sandbox = ctx.deps.sandbox
    ws = ctx.deps.workspaces
    suspect = d.suspect_commit
    incident = str(incident_id)

    async def prepare() -> tuple[Any, workspace.RevertResult]:
        def work() -> tuple[Any, workspace.RevertResult]:
            ws.cached_clone(repo)
            attempt = 1
            while True:
                path = ws.worktree(repo, incident, d.base_commit, "fix-revert")
                try:
                    return path, workspace.revert(path, suspect.sha)
                except (workspace.GitError, FileNotFoundError) as exc:
                    # A lock race or a working tree that vanished: try again in a fresh worktree, then give up to
                    # the breaker (the message waits) -- never a fix.failed verdict for our own hiccup.
                    retryable = isinstance(exc, FileNotFoundError) or exc.contention
                    if not retryable or attempt >= PREPARE_ATTEMPTS:
                        raise
                    log.warning("fixgen: preparing the revert for %s failed (%s); retrying", incident, exc)
                    attempt += 1

        return await asyncio.to_thread(work)

    path, reverted = await ctx.breakers.call(f"git:{repo.name}", prepare, failures=(workspace.GitError, OSError))
    try:
        if not reverted.ok:
            return failed(f"reverting {suspect.sha[:12]} does not apply cleanly: {reverted.error}")

        async def run_tests() -> Any:
            return await sandbox.run(repo.test_command, path, timeout_s=ctx.deps.timeout_s)

        result = await ctx.breakers.call("sandbox", run_tests, failures=(SandboxError, OSError))
        tests = logic.test_run(result)
        if not result.passed:
            return failed(f"the tests still fail with {suspect.sha[:12]} reverted: {tests.summary}", 1, tests)
        patch = await asyncio.to_thread(workspace.diff, path, d.base_commit, "HEAD")
        stats = workspace.patch_stats(patch)
        fix = FixValidatedPayload(
            repo=repo.name,
            base_commit=d.base_commit,
            strategy=STRATEGY,
            patch=patch,
            commit_message=logic.revert_message(suspect, incident),
            files_changed=list(stats.files),
            lines_added=stats.added,
            lines_removed=stats.removed,
            tests=tests,
            attempts=1,
            diagnosis=d,
        )
        return [event.derive(FixValidated, fix, stage="fixgen")]
    finally:
        await asyncio.to_thread(ws.remove_worktree, path)

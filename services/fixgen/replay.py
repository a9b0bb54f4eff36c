"""Fixgen's replay step (`pagerpatch replay`): the replayed diagnosis through the strategy chain for real -- the
repository's tests run in the configured sandbox, on worktrees of fresh clones under the replay's folder (the
per-repository environments are the shared cache, keyed by their dependency hash); with a model, the fix agent
runs too, costed in memory. Nothing is pushed: pull requests are the notifier's, which a replay never runs."""

from __future__ import annotations

from typing import Any

from pagerpatch.git.repos import MemoryRepos
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.llm.config import llm_enabled
from pagerpatch.replay.model import ReplayInput, StageOutcome, offline_runtime, spent
from pagerpatch.settings import Settings
from schemas.envelope import Event
from schemas.events import DiagnosisReady, FixFailed, FixValidated, FixValidatedPayload
from services.fixgen.adapters import LlmFixAgent, WorktreeReverter, make_test_runner
from services.fixgen.handlers import STAGE
from services.fixgen.modelpatch import ModelPatcher
from services.fixgen.settings import environments_root, patch_policy
from services.fixgen.usecase import FixGenerator


async def replay(inputs: ReplayInput, settings: Settings) -> StageOutcome:
    event = inputs.events[0]
    assert isinstance(event, DiagnosisReady)
    runner, problem = make_test_runner(settings.sandbox, environments_root(settings))
    worktrees = WorktreeReverter(Workspaces(inputs.workdir / "workspaces"))
    runtime = offline_runtime(settings) if llm_enabled(settings) else None
    model = None
    if runtime is not None:
        model = ModelPatcher(LlmFixAgent(runtime), worktrees, patch_policy(settings), settings.fixgen.max_attempts)
    generator = FixGenerator(
        repos=MemoryRepos.of(*inputs.repos), reverter=worktrees, tests=runner, sandbox_problem=problem,
        timeout_s=settings.sandbox.timeout_s, model=model,
    )  # fmt: skip
    repo = await generator.repos.require(event.payload.repo)
    outcome = await generator.generate(event.payload, repo, incident_id_of(event), Breakers(), team=event.team)
    output: Event[Any]
    if isinstance(outcome, FixValidatedPayload):
        output = event.derive(FixValidated, outcome, stage=STAGE)
    else:
        output = event.derive(FixFailed, outcome, stage=STAGE)
    return StageOutcome(STAGE, (output,), spent(runtime))

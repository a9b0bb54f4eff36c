"""Diagnosis's replay step (`pagerpatch replay`): the replayed incident.opened through the same use case, on fresh
clones and worktrees under the replay's folder, the knowledge base read from its folder (not the live index),
skips noted instead of audited, and the investigation agent (with a model) costed in memory."""

from __future__ import annotations

from pagerpatch.git.repos import MemoryRepos
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.knowledge import MemoryKnowledge, knowledge_dir, load_folder
from pagerpatch.llm import ToolRegistry
from pagerpatch.llm.config import llm_enabled
from pagerpatch.replay.model import ReplayInput, StageOutcome, offline_runtime, spent
from pagerpatch.settings import Settings
from schemas.events import DiagnosisReady, IncidentOpened
from services.diagnosis.adapters import STAGE, GitCheckouts
from services.diagnosis.investigation import Investigation
from services.diagnosis.memory import MemoryAudit
from services.diagnosis.usecase import Diagnosis


async def replay(inputs: ReplayInput, settings: Settings) -> StageOutcome:
    event = inputs.events[0]
    assert isinstance(event, IncidentOpened)
    runtime = offline_runtime(settings, ToolRegistry(settings)) if llm_enabled(settings) else None
    investigator = None
    if runtime is not None:
        knowledge = MemoryKnowledge(load_folder(knowledge_dir(settings)).entries)
        investigator = Investigation(runtime, knowledge, settings.service_catalog)
    audit = MemoryAudit()
    diagnosis = Diagnosis(
        repos=MemoryRepos.of(*inputs.repos),
        checkouts=GitCheckouts(Workspaces(inputs.workdir / "workspaces")),
        audit=audit,
        investigator=investigator,
    )
    payload = await diagnosis.diagnose(incident_id_of(event), event.payload, team=event.team, at=event.occurred_at)
    outputs = () if payload is None else (event.derive(DiagnosisReady, payload, stage=STAGE),)
    notes = tuple(f"skipped: {reason}" for _, reason in audit.skips)
    return StageOutcome(STAGE, outputs, spent(runtime), notes)

"""Diagnosis handler: a root cause in which every named file, function and commit is verified."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.git.workspace import GitError
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.kernel import store
from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import DiagnosisReady, IncidentOpened
from services.diagnosis import adapters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiagnosisDeps:
    workspaces: Workspaces
    repos: RepoRegistry
    pool: asyncpg.Pool


service: Service[DiagnosisDeps] = Service("diagnosis")


@service.handler("diagnosis", IncidentOpened)
async def on_incident(event: IncidentOpened, ctx: StageContext[DiagnosisDeps]) -> Sequence[Event[Any]]:
    inc = event.payload
    incident_id = incident_id_of(event)
    if inc.repo is None:
        log.warning("incident %s: service %r has no repository in config; nothing to diagnose", event.incident_id,
                    inc.service)  # fmt: skip
        await store.audit(ctx.deps.pool, actor="diagnosis", action="diagnosis.skipped", incident_id=incident_id,
                          details={"reason": f"no repository registered for service {inc.service!r}"})  # fmt: skip
        return []
    repo = await ctx.deps.repos.require(inc.repo)

    async def run() -> Any:
        return await asyncio.to_thread(adapters.diagnose, ctx.deps.workspaces, repo, str(incident_id), inc)

    payload = await ctx.breakers.call(f"git:{repo.name}", run, failures=(GitError, OSError))
    return [event.derive(DiagnosisReady, payload, stage="diagnosis")]

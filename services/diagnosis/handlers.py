"""Diagnosis handler: a root cause in which every named file, function and commit is verified."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pagerpatch import repos, store
from pagerpatch.errors import Poison
from pagerpatch.runtime import Service, StageContext
from pagerpatch.workspace import GitError
from pagerpatch.worktrees import Workspaces
from schemas.envelope import Event
from schemas.events import DiagnosisReady, IncidentOpened
from services.diagnosis import adapters

log = logging.getLogger(__name__)
service: Service[Workspaces] = Service("diagnosis")


@service.handler("diagnosis", IncidentOpened)
async def on_incident(event: IncidentOpened, ctx: StageContext[Workspaces]) -> Sequence[Event[Any]]:
    inc = event.payload
    if event.incident_id is None:
        raise Poison("incident.opened without incident_id")
    if inc.repo is None:
        log.warning("incident %s: service %r has no repository in config; nothing to diagnose", event.incident_id,
                    inc.service)  # fmt: skip
        await store.audit(ctx.pool, actor="diagnosis", action="diagnosis.skipped", incident_id=event.incident_id,
                          details={"reason": f"no repository registered for service {inc.service!r}"})  # fmt: skip
        return []
    found = await repos.get(ctx.settings, ctx.pool, inc.repo)
    if found is None:
        raise Poison(f"repository {inc.repo!r} is not registered (config or `pagerpatch repos add`)")
    repo = found

    async def run() -> Any:
        return await asyncio.to_thread(adapters.diagnose, ctx.deps, repo, str(event.incident_id), inc)

    payload = await ctx.breakers.call(f"git:{repo.name}", run, failures=(GitError, OSError))
    return [event.derive(DiagnosisReady, payload, stage="diagnosis")]

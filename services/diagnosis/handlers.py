"""Diagnosis handler (thin): a root cause in which every named file, function and commit is verified."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import DiagnosisReady, IncidentOpened
from services.diagnosis.adapters import STAGE, GitBreaker
from services.diagnosis.usecase import Diagnosis

service: Service[Diagnosis] = Service(STAGE)


@service.handler("diagnosis", IncidentOpened)
async def on_incident(event: IncidentOpened, ctx: StageContext[Diagnosis]) -> Sequence[Event[Any]]:
    guard = GitBreaker(ctx.breakers)
    payload = await ctx.deps.diagnose(
        incident_id_of(event), event.payload, guard=guard, team=event.team, at=event.occurred_at
    )
    return [] if payload is None else [event.derive(DiagnosisReady, payload, stage=STAGE)]

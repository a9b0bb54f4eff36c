"""Fixgen handler (thin): guard the diagnosis, run the strategy chain through the use case, announce the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import DiagnosisReady, FixFailed, FixValidated, FixValidatedPayload
from services.fixgen.usecase import FixGenerator

STAGE = "fixgen"
service: Service[FixGenerator] = Service(STAGE)


@service.handler("fixgen", DiagnosisReady)
async def on_diagnosis(event: DiagnosisReady, ctx: StageContext[FixGenerator]) -> Sequence[Event[Any]]:
    incident_id = incident_id_of(event)
    repo = await ctx.deps.repos.require(event.payload.repo)
    outcome = await ctx.deps.generate(event.payload, repo, incident_id, ctx.breakers, team=event.team)
    if isinstance(outcome, FixValidatedPayload):
        return [event.derive(FixValidated, outcome, stage=STAGE)]
    return [event.derive(FixFailed, outcome, stage=STAGE)]

"""Review handlers (thin): risk-score validated fixes; unproven ones and those at the threshold wait for approval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import ApprovalDecided, FixValidated
from services.review.usecase import Review

service: Service[Review] = Service("review")


@service.handler("review", FixValidated)
async def on_fix(event: FixValidated, ctx: StageContext[Review]) -> Sequence[Event[Any]]:
    # No incident guard here: a fix approved by policy needs none (the use case asks only when it must wait).
    return await ctx.deps.on_fix(event)


@service.handler("review-decisions", ApprovalDecided)
async def on_decision(event: ApprovalDecided, ctx: StageContext[Review]) -> Sequence[Event[Any]]:
    return await ctx.deps.on_decision(event, incident_id_of(event))

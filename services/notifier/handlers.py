"""Notifier handlers (thin): pull requests for approved fixes, notifications for everything people must know."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import ApprovalRequested, FixApproved, FixFailed, FixRejected
from services.notifier.usecase import Notifier

service: Service[Notifier] = Service("notifier")


@service.handler("notifier-approved", FixApproved)
async def on_approved(event: FixApproved, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.open_pull_request(event, incident_id_of(event), ctx.breakers)


@service.handler("notifier-approval", ApprovalRequested)
async def on_approval_requested(event: ApprovalRequested, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.approval_requested(event)


@service.handler("notifier-rejected", FixRejected)
async def on_rejected(event: FixRejected, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.fix_rejected(event)


@service.handler("notifier-failed", FixFailed)
async def on_failed(event: FixFailed, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.fix_failed(event)

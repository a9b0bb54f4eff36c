"""Notifier handlers (thin): pull requests for approved fixes, notifications for everything people must know."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import (
    ApprovalDecided,
    ApprovalRequested,
    DiagnosisReady,
    FixApproved,
    FixFailed,
    FixRejected,
    FixValidated,
    IncidentOpened,
    PrEvent,
    PrOpened,
)
from services.notifier.usecase import Notifier

service: Service[Notifier] = Service("notifier")


@service.handler("notifier-approved", FixApproved)
async def on_approved(event: FixApproved, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    opened = await ctx.deps.open_pull_request(event, incident_id_of(event), ctx.breakers)
    return [*opened, *await ctx.deps.thread_update(event)]


@service.handler("notifier-pr-events", PrEvent)
async def on_pr_event(event: PrEvent, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.pr_event(event)


@service.handler("notifier-approval", ApprovalRequested)
async def on_approval_requested(event: ApprovalRequested, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return [*await ctx.deps.approval_requested(event), *await ctx.deps.thread_update(event)]


@service.handler("notifier-rejected", FixRejected)
async def on_rejected(event: FixRejected, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return [*await ctx.deps.fix_rejected(event), *await ctx.deps.thread_update(event)]


@service.handler("notifier-failed", FixFailed)
async def on_failed(event: FixFailed, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return [*await ctx.deps.fix_failed(event), *await ctx.deps.thread_update(event)]


# The incident's Slack thread (services/notifier/thread.py): without Slack or Linear configured these ack and do
# nothing.


@service.handler("notifier-opened", IncidentOpened)
async def on_opened(event: IncidentOpened, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.thread_update(event)


@service.handler("notifier-diagnosis", DiagnosisReady)
async def on_diagnosis(event: DiagnosisReady, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.thread_update(event)


@service.handler("notifier-validated", FixValidated)
async def on_validated(event: FixValidated, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.thread_update(event)


@service.handler("notifier-decided", ApprovalDecided)
async def on_decided(event: ApprovalDecided, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.thread_update(event)


@service.handler("notifier-pr-opened", PrOpened)
async def on_pr_opened(event: PrOpened, ctx: StageContext[Notifier]) -> Sequence[Event[Any]]:
    return await ctx.deps.thread_update(event)

"""Notifier: the only service that writes to the outside (pull requests, notifications)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.kernel import failpoints
from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext
from pagerpatch.scm import LocalGitScm
from schemas.envelope import Event
from schemas.events import (
    ApprovalRequested,
    FixApproved,
    FixFailed,
    FixRejected,
    NotificationSent,
    NotificationSentPayload,
    PrOpened,
    PrOpenedPayload,
)
from services.notifier import adapters, logic


@dataclass(frozen=True)
class NotifierDeps:
    scm: LocalGitScm
    repos: RepoRegistry
    pool: asyncpg.Pool


service: Service[NotifierDeps] = Service("notifier")


@service.handler("notifier-approved", FixApproved)
async def on_approved(event: FixApproved, ctx: StageContext[NotifierDeps]) -> Sequence[Event[Any]]:
    incident_id = incident_id_of(event)
    fix = event.payload.fix
    repo = await ctx.deps.repos.require(fix.repo)
    branch = logic.branch_name(incident_id)
    title = logic.pr_title(event.payload)
    body = logic.pr_body(incident_id, event.payload)
    message = f"{fix.commit_message.strip()}\n\npagerpatch incident {incident_id}\n"

    async def push() -> Any:
        return await asyncio.to_thread(
            ctx.deps.scm.push_fix,
            repo,
            branch=branch,
            base_commit=fix.base_commit,
            patch=fix.patch,
            message=message,
            when=event.occurred_at,
        )

    pushed = await ctx.breakers.call("scm", push)
    failpoints.reached("notifier.after_push")
    await adapters.record_pull_request(
        ctx.deps.pool, incident_id=incident_id, repo=repo.name, provider="local-git", branch=branch,
        head=pushed.head_commit, title=title, body=body, url=pushed.url,
    )  # fmt: skip
    opened = event.derive(
        PrOpened,
        PrOpenedPayload(
            repo=repo.name, provider="local-git", branch=branch, head_commit=pushed.head_commit, title=title,
            url=pushed.url,
        ),
        stage="notifier",
    )  # fmt: skip
    text = f"pull request ready for incident {event.incident_id}: {title} — branch {branch} at {pushed.url}"
    return [opened, await _notified(ctx, opened, "pr.opened", text)]


@service.handler("notifier-approval", ApprovalRequested)
async def on_approval_requested(event: ApprovalRequested, ctx: StageContext[NotifierDeps]) -> Sequence[Event[Any]]:
    p = event.payload
    text = (
        f"approval needed for incident {event.incident_id} ({p.risk.level.value}: {'; '.join(p.risk.reasons)}). "
        f"Run `pagerpatch approve {event.incident_id}` or `pagerpatch reject {event.incident_id} --reason ...`"
    )
    return [await _notified(ctx, event, "approval.requested", text)]


@service.handler("notifier-rejected", FixRejected)
async def on_rejected(event: FixRejected, ctx: StageContext[NotifierDeps]) -> Sequence[Event[Any]]:
    text = f"fix for incident {event.incident_id} rejected by {event.payload.rejected_by}: {event.payload.reason}"
    return [await _notified(ctx, event, "fix.rejected", text)]


@service.handler("notifier-failed", FixFailed)
async def on_failed(event: FixFailed, ctx: StageContext[NotifierDeps]) -> Sequence[Event[Any]]:
    text = f"no validated fix for incident {event.incident_id}: {event.payload.reason}"
    return [await _notified(ctx, event, "fix.failed", text)]


async def _notified(ctx: StageContext[NotifierDeps], about: Event[Any], kind: str, text: str) -> NotificationSent:
    await adapters.notify(ctx.deps.pool, about=about.event_id, kind=kind, text=text, incident_id=about.incident_id)
    return about.derive(
        NotificationSent,
        NotificationSentPayload(channel="log", kind=kind, text=text, about_event_id=about.event_id),
        stage="notifier",
    )

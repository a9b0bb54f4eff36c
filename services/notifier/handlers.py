"""Notifier: the only service that writes to the outside (pull requests, notifications)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pagerpatch import failpoints, repos
from pagerpatch.errors import Poison
from pagerpatch.runtime import Service, StageContext
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

service: Service[LocalGitScm] = Service("notifier")


@service.handler("notifier-approved", FixApproved)
async def on_approved(event: FixApproved, ctx: StageContext[LocalGitScm]) -> Sequence[Event[Any]]:
    if event.incident_id is None:
        raise Poison("fix.approved without incident_id")
    fix = event.payload.fix
    found = await repos.get(ctx.settings, ctx.pool, fix.repo)
    if found is None:
        raise Poison(f"repository {fix.repo!r} is not registered (config or `pagerpatch repos add`)")
    repo = found
    branch = logic.branch_name(event.incident_id)
    title = logic.pr_title(event.payload)
    body = logic.pr_body(event.incident_id, event.payload)
    message = f"{fix.commit_message.strip()}\n\npagerpatch incident {event.incident_id}\n"

    async def push() -> Any:
        return await asyncio.to_thread(
            ctx.deps.push_fix,
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
        ctx.pool, incident_id=event.incident_id, repo=repo.name, provider="local-git", branch=branch,
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
async def on_approval_requested(event: ApprovalRequested, ctx: StageContext[LocalGitScm]) -> Sequence[Event[Any]]:
    p = event.payload
    text = (
        f"approval needed for incident {event.incident_id} ({p.risk.level.value}: {'; '.join(p.risk.reasons)}). "
        f"Run `pagerpatch approve {event.incident_id}` or `pagerpatch reject {event.incident_id} --reason ...`"
    )
    return [await _notified(ctx, event, "approval.requested", text)]


@service.handler("notifier-rejected", FixRejected)
async def on_rejected(event: FixRejected, ctx: StageContext[LocalGitScm]) -> Sequence[Event[Any]]:
    text = f"fix for incident {event.incident_id} rejected by {event.payload.rejected_by}: {event.payload.reason}"
    return [await _notified(ctx, event, "fix.rejected", text)]


@service.handler("notifier-failed", FixFailed)
async def on_failed(event: FixFailed, ctx: StageContext[LocalGitScm]) -> Sequence[Event[Any]]:
    text = f"no validated fix for incident {event.incident_id}: {event.payload.reason}"
    return [await _notified(ctx, event, "fix.failed", text)]


async def _notified(ctx: StageContext[LocalGitScm], about: Event[Any], kind: str, text: str) -> NotificationSent:
    await adapters.notify(ctx.pool, about=about.event_id, kind=kind, text=text, incident_id=about.incident_id)
    return about.derive(
        NotificationSent,
        NotificationSentPayload(channel="log", kind=kind, text=text, about_event_id=about.event_id),
        stage="notifier",
    )

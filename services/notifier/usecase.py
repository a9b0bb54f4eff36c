"""Notifier's use case: open the pull request for an approved fix and write the notifications people read.

The notifier is the only stage that writes to the outside; every write is idempotent (a deterministic commit, one
pull request record per incident, one notification per event, channel and kind), so a redelivery repeats nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from pagerpatch.kernel import failpoints
from pagerpatch.kernel.breakers import Breakers
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
from services.notifier import domain
from services.notifier.ports import Notifications, PullRequests, PushedBranch, RepoLookup, Scm

STAGE = "notifier"


@dataclass(frozen=True)
class Notifier:
    """The ports the notifier works over (what the service's handlers get as their deps)."""

    scm: Scm
    repos: RepoLookup
    pull_requests: PullRequests
    notifications: Notifications

    async def open_pull_request(
        self, event: FixApproved, incident_id: uuid.UUID, breakers: Breakers
    ) -> list[Event[Any]]:
        """Push the approved fix as the incident's branch, record the pull request and announce it."""
        approved = event.payload
        fix = approved.fix
        repo = await self.repos.require(fix.repo)
        branch = domain.branch_name(incident_id)
        title = domain.pr_title(approved)
        message = domain.commit_message(incident_id, approved)

        async def push() -> PushedBranch:
            # git is blocking; the commit's dates come from the event, so a retry pushes the very same commit.
            return await asyncio.to_thread(
                self.scm.push_fix, repo, branch=branch, base_commit=fix.base_commit, patch=fix.patch,
                message=message, when=event.occurred_at,
            )  # fmt: skip

        intent = domain.PullRequest(
            repo=repo.name, provider=self.scm.provider, branch=branch, head_commit="", title=title,
            body=domain.pr_body(incident_id, approved), url="",
        )  # fmt: skip
        # Durable before it happens: a branch never exists without its record (a crash or a store failure after
        # the push is retried: the push finds the branch already there, and the record is completed).
        await self.pull_requests.intend(incident_id, intent)
        pushed = await breakers.call("scm", push)
        failpoints.reached("notifier.after_push")
        pr = dataclasses.replace(intent, head_commit=pushed.head_commit, url=pushed.url)
        await self.pull_requests.record(incident_id, pr)
        payload = PrOpenedPayload(
            repo=pr.repo, provider=pr.provider, branch=branch, head_commit=pr.head_commit, title=title, url=pr.url
        )
        opened = event.derive(PrOpened, payload, stage=STAGE)
        text = domain.pr_ready_text(event.incident_id, title, branch, pushed.url, proved=fix.proof == "proved")
        return [opened, await self._notified(opened, "pr.opened", text)]

    async def approval_requested(self, event: ApprovalRequested) -> list[Event[Any]]:
        """Tell the approvers a fix waits at the gate, and how to decide."""
        text = domain.approval_needed_text(event.incident_id, event.payload.risk)
        return [await self._notified(event, "approval.requested", text)]

    async def fix_rejected(self, event: FixRejected) -> list[Event[Any]]:
        text = domain.rejected_text(event.incident_id, event.payload.rejected_by, event.payload.reason)
        return [await self._notified(event, "fix.rejected", text)]

    async def fix_failed(self, event: FixFailed) -> list[Event[Any]]:
        text = domain.no_fix_text(event.incident_id, event.payload.reason)
        return [await self._notified(event, "fix.failed", text)]

    async def _notified(self, about: Event[Any], kind: str, text: str) -> NotificationSent:
        await self.notifications.notify(about=about.event_id, kind=kind, text=text, incident_id=about.incident_id)
        return about.derive(
            NotificationSent,
            NotificationSentPayload(channel="log", kind=kind, text=text, about_event_id=about.event_id),
            stage=STAGE,
        )

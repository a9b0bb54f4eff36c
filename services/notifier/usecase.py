"""Notifier's use case: open the pull request for an approved fix and write the notifications people read.

The notifier is the only stage that writes to the outside; every write is idempotent (a deterministic commit, one
pull request record per incident, one notification per event, channel and kind), so a redelivery repeats nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from pagerpatch.kernel import failpoints
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.settings import RepoConfig
from schemas.envelope import Event
from schemas.events import (
    ApprovalRequested,
    FixApproved,
    FixFailed,
    FixRejected,
    NotificationSent,
    NotificationSentPayload,
    PrEvent,
    PrOpened,
    PrOpenedPayload,
)
from services.notifier import domain
from services.notifier.forge import ForgePullRequests
from services.notifier.outbox import Failed
from services.notifier.ports import Incidents, Notifications, PullRequests, PushedBranch, RepoLookup, Scm
from services.notifier.thread import IncidentThread

STAGE = "notifier"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notifier:
    """The ports the notifier works over (what the service's handlers get as their deps)."""

    scm: Scm
    repos: RepoLookup
    pull_requests: PullRequests
    notifications: Notifications
    thread: IncidentThread | None = None  # the Slack thread and Linear issue (None: neither is configured)
    forge: ForgePullRequests | None = None  # GitHub, for repositories with a `github:` section (None: not configured)
    incidents: Incidents | None = None  # ends incidents whose pull request was merged or closed

    async def thread_update(self, event: Event[Any]) -> list[Event[Any]]:
        """Show the event in the incident's Slack thread / Linear issue (nothing when neither is configured)."""
        return await self.thread.on_event(event) if self.thread is not None else []

    async def open_pull_request(
        self, event: FixApproved, incident_id: uuid.UUID, breakers: Breakers
    ) -> list[Event[Any]]:
        """Push the approved fix as the incident's branch, record the pull request and announce it."""
        approved = event.payload
        fix = approved.fix
        repo = await self.repos.require(fix.repo)
        forge = self.forge if repo.github is not None else None
        message = domain.commit_message(incident_id, approved)
        intent = domain.PullRequest(
            repo=repo.name, provider=forge.host.provider if forge else self.scm.provider,
            branch=domain.branch_name(incident_id), head_commit="", title=domain.pr_title(approved),
            body=domain.pr_body(incident_id, approved), url="",
        )  # fmt: skip
        # Durable before it happens: a branch never exists without its record (a crash or a store failure after
        # the push is retried: the push finds the branch already there, and the record is completed).
        await self.pull_requests.intend(incident_id, intent)
        if forge is not None:
            return await self._open_on_forge(event, incident_id, repo, forge, intent, message, breakers)

        async def push() -> PushedBranch:
            # git is blocking; the commit's dates come from the event, so a retry pushes the very same commit.
            return await asyncio.to_thread(
                self.scm.push_fix, repo, branch=intent.branch, base_commit=fix.base_commit, patch=fix.patch,
                message=message, when=event.occurred_at,
            )  # fmt: skip

        pushed = await breakers.call("scm", push)
        failpoints.reached("notifier.after_push")
        return await self._opened(event, incident_id, dataclasses.replace(intent, head_commit=pushed.head_commit,
                                                                          url=pushed.url))  # fmt: skip

    async def _open_on_forge(
        self,
        event: FixApproved,
        incident_id: uuid.UUID,
        repo: RepoConfig,
        forge: ForgePullRequests,
        intent: domain.PullRequest,
        message: str,
        breakers: Breakers,
    ) -> list[Event[Any]]:
        """The pull request on GitHub, once (services/notifier/forge.py); a refusal is told, not retried."""
        result = await forge.open(
            incident_id=incident_id, repo=repo, approved=event.payload, branch=intent.branch, title=intent.title,
            body=intent.body, message=message, when=event.occurred_at, breakers=breakers,
        )  # fmt: skip
        if isinstance(result, Failed):
            await self.pull_requests.set_state(incident_id, "failed")
            where = f"GitHub {repo.github.repo if repo.github else repo.name}"
            return [
                await self._notified(event, "pr.failed", domain.pr_failed_text(event.incident_id, where, result.reason))
            ]
        pr = dataclasses.replace(intent, head_commit=result.head_commit, url=result.url, number=result.number)
        return await self._opened(event, incident_id, pr)

    async def _opened(self, event: FixApproved, incident_id: uuid.UUID, pr: domain.PullRequest) -> list[Event[Any]]:
        """Record the pull request the forge or the remote now has, and announce it."""
        await self.pull_requests.record(incident_id, pr)
        payload = PrOpenedPayload(repo=pr.repo, provider=pr.provider, branch=pr.branch, head_commit=pr.head_commit,
                                  title=pr.title, url=pr.url, number=pr.number)  # fmt: skip
        opened = event.derive(PrOpened, payload, stage=STAGE)
        proved = event.payload.fix.proof == "proved"
        text = domain.pr_ready_text(event.incident_id, pr.title, pr.branch, pr.url, proved=proved)
        return [opened, await self._notified(opened, "pr.opened", text)]

    async def pr_event(self, event: PrEvent) -> list[Event[Any]]:
        """A pull request merged (incident resolved, "fix merged") or closed unmerged (pr_closed, with why).

        A pull request pagerpatch did not open is acked and logged: it will not become ours by retrying.
        """
        p = event.payload
        concluded = domain.pr_outcome(p.action, p.number, p.actor)
        if concluded is None:
            return []
        incident_id = await self.pull_requests.incident_for(provider=p.provider, branch=p.branch, number=p.number)
        if incident_id is None:
            log.info("pr.event %s for %s#%s (%s): not a pagerpatch pull request", p.action, p.repo, p.number, p.branch)
            return []
        state, outcome = concluded
        await self.pull_requests.set_state(incident_id, p.action)
        ended = await self.incidents.conclude(incident_id, state, outcome) if self.incidents is not None else False
        if not ended:
            log.info("pr.event %s for incident %s: the incident had already ended", p.action, incident_id)
        text = f"incident {incident_id}: {outcome}"
        await self.notifications.notify(about=event.event_id, kind=f"pr.{p.action}", text=text, incident_id=incident_id)
        payload = NotificationSentPayload(
            channel="log", kind=f"pr.{p.action}", text=text, about_event_id=event.event_id
        )
        # The webhook's event names no incident: the thread sees it under the incident it concluded.
        shown = await self.thread_update(event.model_copy(update={"incident_id": incident_id}))
        return [event.derive(NotificationSent, payload, stage=STAGE, incident_id=incident_id), *shown]

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

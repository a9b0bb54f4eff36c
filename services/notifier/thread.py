"""The incident's Slack thread and Linear issue (use case): every side effect once, through the outbox.

Each event the thread shows is merged into the incident's facts (`thread_facts`), then:
- the root message is created on first need (whichever event comes first; outbox `slack.root`, found again by its
  metadata after a crash) and updated in place (`chat.update`) whenever what it shows changed;
- the event's details go to one thread reply (outbox `slack.reply:<event type>`);
- `approval.requested` posts the Approve / Reject buttons (outbox `slack.approval`), updated once someone decided;
- `fix.failed` opens the Linear issue (outbox `linear.issue`), as does the sweep for approvals waiting longer than
  `linear.approval_wait_s` (`sweep_waiting`, run periodically by the service, see app.py).
A terminal refusal (bad token, unknown channel) is reported once as a `notification.sent` of kind `slack.failed`
/ `linear.failed` and the outbox row is failed; a rate limit or 5xx raises `Transient` and the message waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pagerpatch.kernel.guards import incident_id_of
from schemas.envelope import Event, derived_id
from schemas.events import ApprovalRequested, FixFailed, NotificationSent, NotificationSentPayload
from services.notifier import domain_linear, domain_slack
from services.notifier.outbox import FAILED, Failed, Rejected, Remote, perform_once
from services.notifier.ports import LinearApi, Notifications, Outbox, SlackApi, ThreadStore
from services.notifier.thread_facts import DECISION, Patch, ThreadState, patch_for

log = logging.getLogger(__name__)
STAGE = "notifier"
ROOT, APPROVAL = "slack.root", "slack.approval"
LINEAR_ISSUE = "linear.issue"


@dataclass
class ThreadConfig:
    """The settings the thread reads (built by app.py from `slack:`, `linear:`, the service catalog, policy)."""

    slack_channel: Callable[[str | None], str | None] = lambda team: None
    linear_team: Callable[[str | None], str | None] = lambda team: None
    team_of_service: Callable[[str], str | None] = lambda service: None
    slack_approvers: frozenset[str] = frozenset()
    approval_wait_s: float = 3600.0
    console_url: str | None = None


@dataclass
class IncidentThread:
    threads: ThreadStore
    outbox: Outbox
    notifications: Notifications
    slack: SlackApi | None = None
    linear: LinearApi | None = None
    config: ThreadConfig = field(default_factory=ThreadConfig)
    _locks: dict[uuid.UUID, asyncio.Lock] = field(default_factory=dict)
    _users: dict[uuid.UUID, int] = field(default_factory=dict)  # holders and waiters of each incident's lock

    @property
    def enabled(self) -> bool:
        return self.slack is not None or self.linear is not None

    @contextlib.asynccontextmanager
    async def _locked(self, incident_id: uuid.UUID) -> AsyncIterator[None]:
        """One update of an incident's thread at a time in this process (renders never overtake each other)."""
        lock = self._locks.setdefault(incident_id, asyncio.Lock())
        self._users[incident_id] = self._users.get(incident_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            # Dropped only when nobody holds or waits for it: a released lock whose waiter has not resumed yet
            # reads unlocked, and a new lock for a later event would then run next to that waiter.
            self._users[incident_id] -= 1
            if not self._users[incident_id]:
                del self._users[incident_id], self._locks[incident_id]

    async def on_event(self, event: Event[Any]) -> list[Event[Any]]:
        """Show an event in the incident's thread (and open the Linear issue for fix.failed)."""
        if not self.enabled:
            return []
        incident_id = incident_id_of(event)
        patch = patch_for(event, slack_approvers=self.config.slack_approvers)
        team = patch.team or (self.config.team_of_service(patch.service) if patch.service else None)
        async with self._locked(incident_id):
            state = await self.threads.apply(incident_id, team, patch)
            out: list[Event[Any]] = []
            if self.linear is not None and isinstance(event, FixFailed):
                out += await self._linear(event, state, "fix.failed")
                state = await self._reload(state)
            if self.slack is not None:
                out += await self._slack(self.slack, event, state, patch)
        return out

    async def _reload(self, state: ThreadState) -> ThreadState:
        return await self.threads.get(state.incident_id) or state

    # ------------------------------------------------------------------------------------------- Slack
    async def _slack(self, slack: SlackApi, event: Event[Any], state: ThreadState, patch: Patch) -> list[Event[Any]]:
        incident_id = state.incident_id
        channel = self.config.slack_channel(state.team)
        if channel is None:
            log.info(
                "incident %s: no Slack channel for team %r (slack.channels, slack.default_channel)",
                incident_id,
                state.team,
            )
            return []
        before = await self.outbox.get(incident_id, ROOT, channel)
        if before is not None and before.state == FAILED:
            return []  # reported when it failed; nothing more is posted for this incident
        message = domain_slack.root_message(incident_id, state.facts)
        root = await self._root(slack, incident_id, channel, message)
        if isinstance(root, Failed):
            return [await self._sent(event, "slack", "slack.failed", root.reason, channel)]
        where, ts = str(root.detail.get("channel") or channel), root.id
        problems: list[str] = []
        try:
            await self._show(slack, incident_id, "root", where, ts, message)
        except Rejected as exc:
            problems.append(exc.reason)
        kind = event.type
        reply = domain_slack.reply_message(kind, state.facts)
        if reply is not None:
            problems += await self._reply(slack, incident_id, channel, where, ts, f"slack.reply:{kind}", kind, reply)
        if patch.refused_click:
            who = patch.refused_click
            kind = f"approval.refused:{who}"
            message = domain_slack.refused_click_message(who)
            problems += await self._reply(slack, incident_id, channel, where, ts, f"slack.reply:{kind}", kind, message)
        problems += await self._approval(slack, event, state, channel, where, ts)
        if problems:
            return [await self._sent(event, "slack", "slack.failed", "; ".join(problems), f"{where}/{ts}")]
        return [await self._sent(event, "slack", "slack.thread", message.text, f"{where}/{ts}")]

    async def _root(
        self, slack: SlackApi, incident_id: uuid.UUID, channel: str, message: domain_slack.SlackMessage
    ) -> Remote | Failed:
        shown: list[str] = []

        async def create() -> Remote:
            remote = await slack.post(channel, message, metadata=domain_slack.root_metadata(incident_id))
            shown.append(message.digest())
            return remote

        result = await perform_once(
            self.outbox,
            incident_id,
            ROOT,
            channel,
            lookup=lambda: slack.find_root(channel, incident_id),
            create=create,
            failpoint="notifier.after_slack",
        )
        if shown and not isinstance(result, Failed):
            await self.threads.rendered(incident_id, "root", shown[0])
        return result

    async def _show(
        self,
        slack: SlackApi,
        incident_id: uuid.UUID,
        name: str,
        channel: str,
        ts: str,
        message: domain_slack.SlackMessage,
    ) -> None:
        """Update a message in place unless it already shows exactly this."""
        state = await self.threads.get(incident_id)
        digest = message.digest()
        if state is not None and state.rendered.get(name) == digest:
            return
        await slack.update(channel, ts, message)
        await self.threads.rendered(incident_id, name, digest)

    async def _reply(
        self,
        slack: SlackApi,
        incident_id: uuid.UUID,
        channel: str,
        where: str,
        ts: str,
        outbox_kind: str,
        kind: str,
        message: domain_slack.SlackMessage,
    ) -> list[str]:
        result = await perform_once(
            self.outbox,
            incident_id,
            outbox_kind,
            channel,
            lookup=lambda: slack.find_reply(where, ts, incident_id, kind),
            create=lambda: slack.post(
                where, message, thread_ts=ts, metadata=domain_slack.reply_metadata(incident_id, kind)
            ),
        )
        return [result.reason] if isinstance(result, Failed) else []

    async def _approval(
        self, slack: SlackApi, event: Event[Any], state: ThreadState, channel: str, where: str, ts: str
    ) -> list[str]:
        """Post the buttons at approval.requested; once a decision is known, show it in their place."""
        incident_id = state.incident_id
        message = domain_slack.approval_message(incident_id, state.facts)
        if isinstance(event, ApprovalRequested):
            shown: list[str] = []

            async def create() -> Remote:
                remote = await slack.post(
                    where, message, thread_ts=ts, metadata=domain_slack.reply_metadata(incident_id, "approval")
                )
                shown.append(message.digest())
                return remote

            result = await perform_once(
                self.outbox,
                incident_id,
                APPROVAL,
                channel,
                lookup=lambda: slack.find_reply(where, ts, incident_id, "approval"),
                create=create,
            )
            if isinstance(result, Failed):
                return [result.reason]
            if shown:
                await self.threads.rendered(incident_id, "approval", shown[0])
                return []
        if not state.facts.get(DECISION):
            return []
        posted = await self.outbox.get(incident_id, APPROVAL, channel)
        if posted is None or posted.state != "done" or not posted.remote_id:
            return []
        try:
            await self._show(slack, incident_id, "approval", where, posted.remote_id, message)
        except Rejected as exc:
            return [exc.reason]
        return []

    # ------------------------------------------------------------------------------------------- Linear
    async def _linear(
        self, event: Event[Any] | None, state: ThreadState, why: domain_linear.Why, waited_s: float | None = None
    ) -> list[Event[Any]]:
        linear = self.linear
        key = self.config.linear_team(state.team)
        if linear is None or key is None:
            log.info(
                "incident %s: no Linear team for team %r (linear.teams, linear.default_team)",
                state.incident_id,
                state.team,
            )
            return []
        incident_id = state.incident_id
        title = domain_linear.issue_title(state.facts, why)
        description = domain_linear.issue_description(
            incident_id, state.facts, why, console_url=self.config.console_url, waited_s=waited_s
        )

        async def create() -> Remote:
            found = await linear.find_issue(key, incident_id)  # searched before creating, whatever the outbox says
            return found if found is not None else await linear.create_issue(key, title, description)

        result = await perform_once(
            self.outbox,
            incident_id,
            LINEAR_ISSUE,
            key,
            lookup=lambda: linear.find_issue(key, incident_id),
            create=create,
            failpoint="notifier.after_linear",
        )
        await self.threads.escalated(incident_id)
        if isinstance(result, Failed):
            log.warning("incident %s: Linear issue refused: %s", incident_id, result.reason)
            return [await self._sent(event, "linear", "linear.failed", result.reason, key)] if event else []
        issue = {"url": result.url, "identifier": result.detail.get("identifier"), "why": why}
        await self.threads.apply(incident_id, None, Patch({"linear": issue}))
        text = f"Linear issue {issue['identifier'] or result.id} for incident {incident_id}: {result.url}"
        return [await self._sent(event, "linear", "linear.issue", text, key)] if event else []

    async def sweep_waiting(self, now: datetime | None = None) -> int:
        """Open the Linear issue of every approval waiting longer than `approval_wait_s`; returns how many."""
        if self.linear is None:
            return 0
        now = now or datetime.now(UTC)
        opened = 0
        for waiting in await self.threads.waiting(now - timedelta(seconds=self.config.approval_wait_s)):
            async with self._locked(waiting.incident_id):
                state = await self.threads.get(waiting.incident_id) or waiting
                if self.config.linear_team(state.team) is None:
                    # No Linear team for it: settled for the sweep, else it would come back every round (and a
                    # hundred such incidents would hide every other waiting approval behind the query's LIMIT).
                    log.info(
                        "incident %s waits for approval; no Linear team for team %r", state.incident_id, state.team
                    )
                    await self.threads.escalated(state.incident_id)
                    continue
                requested = state.approval_requested_at or now
                await self._linear(None, state, "approval.waiting", waited_s=(now - requested).total_seconds())
                opened += 1
                if self.slack is not None:  # show the issue in the root message
                    await self._refresh_root(self.slack, await self._reload(state))
        return opened

    async def _refresh_root(self, slack: SlackApi, state: ThreadState) -> None:
        channel = self.config.slack_channel(state.team)
        row = await self.outbox.get(state.incident_id, ROOT, channel) if channel else None
        if row is None or row.state != "done" or not row.remote_id:
            return
        where = str(row.detail.get("channel") or channel)
        with contextlib.suppress(Rejected):
            message = domain_slack.root_message(state.incident_id, state.facts)
            await self._show(slack, state.incident_id, "root", where, row.remote_id, message)

    # ------------------------------------------------------------------------------------------- records
    async def _sent(
        self, event: Event[Any] | None, channel: str, kind: str, text: str, target: str
    ) -> NotificationSent:
        assert event is not None
        await self.notifications.notify(
            about=event.event_id, kind=kind, text=text[:20_000], incident_id=event.incident_id, channel=channel
        )
        return event.derive(
            NotificationSent,
            NotificationSentPayload(
                channel=channel, kind=kind, target=target[:500], text=text[:20_000], about_event_id=event.event_id
            ),
            stage=STAGE,
            event_id=derived_id(event.event_id, STAGE, f"notification.sent:{channel}"),
        )


async def sweep_forever(thread: IncidentThread, *, interval_s: float, stopped: Callable[[], bool]) -> None:
    """The notifier's background sweep: every `interval_s`, open the Linear issue of approvals waiting too long.

    The runtime has no timer of its own and a quiet system sends no later event to check on, so the service runs
    this task next to its consumers (app.py); it ends when the service's pool closes (`stopped`). A failed round
    (Linear or the store away) is logged and retried at the next one; the outbox keeps each issue to one.
    """
    while not stopped():
        await asyncio.sleep(interval_s)
        if stopped():
            return
        try:
            opened = await thread.sweep_waiting()
        except Exception as exc:  # the next round retries; nothing is lost (the rows stay waiting)
            log.warning("approval sweep failed: %s: %s", type(exc).__name__, exc)
            continue
        if opened:
            log.info("approval sweep: %d Linear issue(s) for approvals waiting too long", opened)

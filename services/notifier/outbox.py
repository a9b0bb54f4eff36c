"""Each side effect in the outside world exactly once: the outbox protocol (pure over the `Outbox` port).

A side effect is keyed (incident, kind, target): `("github.pr", "owner/name")`, `("slack.root", "C123")`, ...
`perform_once` records the attempt ('pending') before the remote call and the remote id ('done') after it. A
retry of a pending attempt first looks the effect up remotely (the PR by its head branch, the Slack message by
its stored ts or metadata, the Linear issue by the incident id), so a crash between the remote call and the
record never performs it twice. A `Rejected` error (bad token, no access, unknown channel) is terminal: the row
becomes 'failed' with the reason and `Failed` is returned (the caller tells people why; nothing loops). Any other
error (rate limit, 5xx, timeout: raise `Transient`) leaves the row pending and propagates, so the message waits.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from pagerpatch.kernel import failpoints

if TYPE_CHECKING:
    from services.notifier.ports import Outbox

State = Literal["pending", "done", "failed"]
PENDING: Final = "pending"
DONE: Final = "done"
FAILED: Final = "failed"


@dataclass(frozen=True)
class Remote:
    """What a side effect left in the outside world: its id (PR number, message ts, issue id) and where to see it."""

    id: str
    url: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """A side effect refused for good (`Rejected`): the reason people are told."""

    reason: str


class Rejected(Exception):
    """A terminal refusal by the remote side (401, 404, invalid_auth, channel_not_found): never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OutboxEntry:
    incident_id: uuid.UUID
    kind: str
    target: str
    state: State
    remote_id: str | None = None
    remote_url: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    last_error: str | None = None
    updated_at: datetime | None = None

    def remote(self) -> Remote:
        return Remote(id=self.remote_id or "", url=self.remote_url, detail=dict(self.detail))


async def perform_once(
    outbox: Outbox,
    incident_id: uuid.UUID,
    kind: str,
    target: str,
    *,
    lookup: Callable[[], Awaitable[Remote | None]],
    create: Callable[[], Awaitable[Remote]],
    failpoint: str | None = None,
    retry_failed: bool = False,
) -> Remote | Failed:
    """Perform the side effect unless it was (done row, or found remotely after an interrupted attempt).

    A failed row returns its `Failed` again without calling out, unless `retry_failed`.
    """
    row = await outbox.get(incident_id, kind, target)
    if row is not None and row.state == DONE:
        return row.remote()
    if row is not None and row.state == FAILED and not retry_failed:
        return Failed(row.last_error or "failed")
    interrupted = row is not None  # an earlier attempt may have reached the remote side before it died
    await outbox.begin(incident_id, kind, target)
    try:
        remote = await lookup() if interrupted else None
        if remote is None:
            remote = await create()
            if failpoint:
                failpoints.reached(failpoint)
    except Rejected as exc:
        await outbox.fail(incident_id, kind, target, exc.reason)
        return Failed(exc.reason)
    except Exception as exc:
        await outbox.attempt_failed(incident_id, kind, target, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    return (await outbox.done(incident_id, kind, target, remote)).remote()

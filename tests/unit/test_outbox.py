"""The outbox protocol on MemoryOutbox: each side effect once, a crash between the call and the record looked up
remotely, terminal refusals recorded and returned, retryable errors left pending. The same checks run on PgOutbox
in tests/integration/test_outbox_pg.py."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from pagerpatch.kernel import failpoints
from pagerpatch.kernel.errors import Transient
from services.notifier.memory import MemoryOutbox
from services.notifier.outbox import DONE, FAILED, PENDING, Failed, Rejected, Remote, perform_once
from services.notifier.ports import Outbox


class Crash(BaseException):
    """The process died here (what a SIGKILL at a failpoint does, without killing the test runner)."""


class FakeRemote:
    """A remote side that keeps what was created; `lookup` finds it like a PR found by its head branch."""

    def __init__(self) -> None:
        self.created: list[Remote] = []
        self.lookups = 0
        self.errors: list[BaseException] = []

    async def lookup(self) -> Remote | None:
        self.lookups += 1
        return self.created[-1] if self.created else None

    async def create(self) -> Remote:
        if self.errors:
            raise self.errors.pop(0)
        made = Remote(id=str(len(self.created) + 1), url=f"https://example.test/pr/{len(self.created) + 1}")
        self.created.append(made)
        return made


def run(outbox: Outbox, incident: uuid.UUID, remote: FakeRemote, failpoint: str | None = None) -> Awaitable[object]:
    return perform_once(
        outbox, incident, "github.pr", "acme/shop", lookup=remote.lookup, create=remote.create, failpoint=failpoint
    )


async def check_once_and_redelivery_repeats_nothing(outbox: Outbox) -> None:
    incident, remote = uuid.uuid4(), FakeRemote()
    first = await run(outbox, incident, remote)
    again = await run(outbox, incident, remote)
    assert first == again == Remote(id="1", url="https://example.test/pr/1")
    assert len(remote.created) == 1 and remote.lookups == 0  # a done row answers without calling out
    row = await outbox.get(incident, "github.pr", "acme/shop")
    assert row is not None and (row.state, row.remote_id, row.attempts) == (DONE, "1", 1)
    # another target of the same incident is another side effect
    other = await perform_once(outbox, incident, "github.pr", "acme/other", lookup=remote.lookup, create=remote.create)
    assert isinstance(other, Remote) and other.id == "2"
    assert [e.target for e in await outbox.entries(incident)] == ["acme/shop", "acme/other"]


async def check_crash_after_the_call_is_found_remotely(outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> None:
    incident, remote = uuid.uuid4(), FakeRemote()

    def die(name: str) -> None:
        if name == "notifier.after_test":
            raise Crash(name)

    monkeypatch.setattr(failpoints, "reached", die)
    with pytest.raises(Crash):
        await run(outbox, incident, remote, failpoint="notifier.after_test")
    row = await outbox.get(incident, "github.pr", "acme/shop")
    assert row is not None and row.state == PENDING and row.remote_id is None  # created, but not recorded
    monkeypatch.setattr(failpoints, "reached", lambda name: None)
    recovered = await run(outbox, incident, remote, failpoint="notifier.after_test")
    assert recovered == remote.created[0]
    assert len(remote.created) == 1 and remote.lookups == 1  # looked up, not created again
    row = await outbox.get(incident, "github.pr", "acme/shop")
    assert row is not None and (row.state, row.remote_id, row.attempts) == (DONE, "1", 2)


async def check_transient_stays_pending_then_succeeds(outbox: Outbox) -> None:
    incident, remote = uuid.uuid4(), FakeRemote()
    remote.errors.append(Transient("github: 429 rate limited", retry_after_s=3))
    with pytest.raises(Transient):
        await run(outbox, incident, remote)
    row = await outbox.get(incident, "github.pr", "acme/shop")
    assert row is not None and row.state == PENDING and "429 rate limited" in (row.last_error or "")
    done = await run(outbox, incident, remote)
    assert isinstance(done, Remote) and done.id == "1" and remote.lookups == 1
    row = await outbox.get(incident, "github.pr", "acme/shop")
    assert row is not None and row.state == DONE and row.last_error is None


async def check_rejected_is_terminal_and_returned(outbox: Outbox) -> None:
    incident, remote = uuid.uuid4(), FakeRemote()
    remote.errors.append(Rejected("github: 401 Bad credentials"))
    assert await run(outbox, incident, remote) == Failed("github: 401 Bad credentials")
    # a redelivery answers from the row: no second call, same reason
    assert await run(outbox, incident, remote) == Failed("github: 401 Bad credentials")
    row = await outbox.get(incident, "github.pr", "acme/shop")
    assert row is not None and (row.state, row.attempts) == (FAILED, 1) and remote.created == []
    # retry_failed (the operator fixed the token and redrove the event) tries again
    retried = await perform_once(
        outbox, incident, "github.pr", "acme/shop", lookup=remote.lookup, create=remote.create, retry_failed=True
    )
    assert isinstance(retried, Remote) and retried.id == "1"


async def check_done_keeps_the_first_remote_and_details_merge(outbox: Outbox) -> None:
    incident = uuid.uuid4()
    await outbox.begin(incident, "slack.root", "C1")
    first = await outbox.done(incident, "slack.root", "C1", Remote(id="1700000000.000100", detail={"channel": "C1"}))
    late = await outbox.done(incident, "slack.root", "C1", Remote(id="1700000000.000999"))
    assert first.remote_id == late.remote_id == "1700000000.000100"
    await outbox.fail(incident, "slack.root", "C1", "channel_not_found")  # a done row is left alone
    await outbox.update_detail(incident, "slack.root", "C1", {"stage": "diagnosis"})
    row = await outbox.get(incident, "slack.root", "C1")
    assert row is not None and row.state == DONE
    assert row.detail == {"channel": "C1", "stage": "diagnosis"} and row.remote().id == "1700000000.000100"


async def test_once_and_redelivery_repeats_nothing() -> None:
    await check_once_and_redelivery_repeats_nothing(MemoryOutbox())


async def test_crash_after_the_call_is_found_remotely(monkeypatch: pytest.MonkeyPatch) -> None:
    await check_crash_after_the_call_is_found_remotely(MemoryOutbox(), monkeypatch)


async def test_transient_stays_pending_then_succeeds() -> None:
    await check_transient_stays_pending_then_succeeds(MemoryOutbox())


async def test_rejected_is_terminal_and_returned() -> None:
    await check_rejected_is_terminal_and_returned(MemoryOutbox())


async def test_done_keeps_the_first_remote_and_details_merge() -> None:
    await check_done_keeps_the_first_remote_and_details_merge(MemoryOutbox())


CHECKS: list[Callable[[Outbox], Awaitable[None]]] = [
    check_once_and_redelivery_repeats_nothing,
    check_transient_stays_pending_then_succeeds,
    check_rejected_is_terminal_and_returned,
    check_done_keeps_the_first_remote_and_details_merge,
]

"""The notifier's side effect is durable first: the pull request's intent is recorded before the branch is pushed,
so no branch exists without a record, and a retry after a crash or a store failure completes the record."""

from __future__ import annotations

import pytest

from pagerpatch.kernel import failpoints, outage
from pagerpatch.kernel.breakers import Breakers
from tests.unit.test_notifier_usecase import INCIDENT, approved, notifier, ports


class Crash(BaseException):
    """Stands in for the failpoint's SIGKILL: nothing after it runs."""


async def test_the_intent_is_recorded_before_the_push(monkeypatch: pytest.MonkeyPatch) -> None:
    n = notifier()
    scm, prs, _ = ports(n)
    seen: list[tuple[int, int]] = []
    real_push = scm.push_fix

    def push_fix(*args: object, **kwargs: object) -> object:
        seen.append((len(prs.intents), len(scm.pushes)))
        return real_push(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scm, "push_fix", push_fix)
    await n.open_pull_request(approved(), INCIDENT, Breakers())
    assert seen == [(1, 0)]  # the intent was there when the push started
    assert prs.intents == {} and list(prs.records) == [INCIDENT]


async def test_a_crash_after_the_push_leaves_a_record_and_the_retry_completes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = notifier()
    scm, prs, notes = ports(n)

    def crash(name: str) -> None:
        if name == "notifier.after_push":
            raise Crash(name)

    monkeypatch.setattr(failpoints, "reached", crash)
    event = approved()
    with pytest.raises(Crash):
        await n.open_pull_request(event, INCIDENT, Breakers())
    assert len(scm.pushes) == 1  # the branch is out...
    assert list(prs.intents) == [INCIDENT] and prs.records == {}  # ...and recorded as intended, not lost
    assert prs.intents[INCIDENT].branch == f"pagerpatch/{INCIDENT}"

    monkeypatch.setattr(failpoints, "reached", lambda name: None)
    opened, _ = await n.open_pull_request(event, INCIDENT, Breakers())  # the redelivery
    assert len(scm.pushes) == 1  # the branch was found already there: nothing pushed again
    [(_, pr)] = prs.records.values()
    assert pr.head_commit == opened.payload.head_commit and pr.url == opened.payload.url
    assert prs.intents == {} and len(notes.sent) == 1


async def test_a_store_failure_after_the_push_is_an_outage_and_the_retry_completes_the_record() -> None:
    n = notifier()
    scm, prs, notes = ports(n)
    prs.failures = 1
    event = approved()
    with pytest.raises(ConnectionRefusedError) as failed:
        await n.open_pull_request(event, INCIDENT, Breakers())
    assert outage.is_store_outage(failed.value)  # the runtime waits it out in place: never dead-lettered
    assert len(scm.pushes) == 1 and list(prs.intents) == [INCIDENT] and notes.sent == []

    await n.open_pull_request(event, INCIDENT, Breakers())  # the same delivery, retried in place
    assert len(scm.pushes) == 1 and list(prs.records) == [INCIDENT] and prs.intents == {}
    assert len(notes.sent) == 1

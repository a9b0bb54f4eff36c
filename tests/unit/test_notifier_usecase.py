"""Notifier's use case on memory ports: the pull request is pushed and recorded once, notifications written once."""

from __future__ import annotations

import uuid
from typing import Literal

import pytest

from pagerpatch.kernel import failpoints
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Poison, Transient
from pagerpatch.kernel.runtime import StageContext
from pagerpatch.settings import RepoConfig, Settings
from schemas import streams
from schemas.events import (
    ApprovalRequested,
    ApprovalRequestedPayload,
    DiagnosisReadyPayload,
    FixApproved,
    FixApprovedPayload,
    FixFailed,
    FixFailedPayload,
    FixRejected,
    FixRejectedPayload,
    FixValidatedPayload,
    NotificationSent,
    PrOpened,
    RiskAssessment,
    RiskLevel,
    TestRun,
)
from services.notifier import handlers
from services.notifier.domain import pr_body
from services.notifier.memory import MemoryNotifications, MemoryPullRequests, MemoryRepos, MemoryScm
from services.notifier.usecase import Notifier

SHA = "c" * 40
INCIDENT = uuid.UUID("0e9d8c7b-6a5f-4e3d-8c1b-a0f9e8d7c6b5")
RISK = RiskAssessment(level=RiskLevel.HIGH, score=50, reasons=["touches protected path(s): migrations/x.sql"])


def notifier(scm: MemoryScm | None = None) -> Notifier:
    return Notifier(
        scm=scm or MemoryScm(),
        repos=MemoryRepos({"shop": RepoConfig(name="shop", path="/src/shop")}),
        pull_requests=MemoryPullRequests(),
        notifications=MemoryNotifications(),
    )


def ports(n: Notifier) -> tuple[MemoryScm, MemoryPullRequests, MemoryNotifications]:
    assert isinstance(n.scm, MemoryScm)
    assert isinstance(n.pull_requests, MemoryPullRequests)
    assert isinstance(n.notifications, MemoryNotifications)
    return n.scm, n.pull_requests, n.notifications


def approved(repo: str = "shop", proof: Literal["proved", "unproven"] = "proved") -> FixApproved:
    diagnosis = DiagnosisReadyPayload(repo=repo, base_commit=SHA, root_cause="KeyError in find_coupon",
                                      confidence=0.9, title="KeyError for unknown coupons")  # fmt: skip
    tests = TestRun(command="pytest", passed=True, exit_code=0, summary="12 passed", duration_s=1.5)
    fix = FixValidatedPayload(repo=repo, base_commit=SHA, strategy="revert-suspect", patch="diff --git a/x b/x\n",
                              commit_message="Revert coupons\n", files_changed=["x"], tests=tests, attempts=1,
                              diagnosis=diagnosis, proof=proof, proof_detail="1 failing at the base commit pass "
                              "with it reverted: tests/test_x.py::test_y" if proof == "proved" else "")  # fmt: skip
    payload = FixApprovedPayload(risk=RISK, approved_by="dana", reason="ok", fix=fix)
    return FixApproved.create(payload, source="review", incident_id=INCIDENT)


# ---------------------------------------------------------------- the pull request


async def test_an_approved_fix_is_pushed_once_and_recorded() -> None:
    n = notifier()
    scm, prs, notes = ports(n)
    event = approved()
    opened, sent = await n.open_pull_request(event, INCIDENT, Breakers())
    assert isinstance(opened, PrOpened) and isinstance(sent, NotificationSent)
    assert scm.pushes == [("shop", f"pagerpatch/{INCIDENT}", opened.payload.head_commit)]
    [(_, pr)] = prs.records.values()
    assert prs.records.keys() == {INCIDENT}
    assert (pr.branch, pr.head_commit, pr.url, pr.provider) == (opened.payload.branch, opened.payload.head_commit,
                                                                opened.payload.url, "memory")  # fmt: skip
    assert pr.title == opened.payload.title == "fix: KeyError for unknown coupons"
    assert pr.body == pr_body(INCIDENT, event.payload)
    assert (opened.causation_id, sent.causation_id) == (event.event_id, opened.event_id)
    assert sent.payload.about_event_id == opened.event_id and sent.payload.kind == "pr.opened"
    assert [(s.about, s.kind) for s in notes.sent] == [(opened.event_id, "pr.opened")]
    assert f"branch pagerpatch/{INCIDENT} at {opened.payload.url}" in notes.sent[0].text


async def test_the_pull_request_and_its_notification_say_whether_the_fix_is_proved() -> None:
    n = notifier()
    await n.open_pull_request(approved(proof="proved"), INCIDENT, Breakers())
    [(_, pr)] = ports(n)[1].records.values()
    assert pr.body.startswith("Proved: 1 failing at the base commit pass with it reverted: tests/test_x.py::test_y.")
    assert "UNPROVEN" not in ports(n)[2].sent[0].text

    unproven = notifier()
    await unproven.open_pull_request(approved(proof="unproven"), INCIDENT, Breakers())
    [(_, pr)] = ports(unproven)[1].records.values()
    assert pr.body.startswith("UNPROVEN: the tests pass with and without this change")
    assert "(UNPROVEN: nothing shows it fixes the failure; see the pull request)" in ports(unproven)[2].sent[0].text


async def test_the_same_approval_handled_twice_pushes_records_and_notifies_once() -> None:
    n = notifier()
    scm, prs, notes = ports(n)
    event = approved()
    first = await n.open_pull_request(event, INCIDENT, Breakers())
    again = await n.open_pull_request(event, INCIDENT, Breakers())
    assert [e.event_id for e in again] == [e.event_id for e in first]  # the very same events, ids included
    assert again[0].payload == first[0].payload
    assert len(scm.pushes) == 1 and len(prs.records) == 1 and len(notes.sent) == 1


async def test_the_commit_names_the_incident() -> None:
    n = notifier()
    opened, _ = await n.open_pull_request(approved(), INCIDENT, Breakers())
    assert ports(n)[0].messages[opened.payload.head_commit] == f"Revert coupons\n\npagerpatch incident {INCIDENT}\n"


async def test_the_failpoint_is_reached_after_the_push_and_before_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    n = notifier()
    scm, prs, _ = ports(n)
    at_failpoint: list[tuple[str, int, int]] = []
    monkeypatch.setattr(failpoints, "reached", lambda name: at_failpoint.append((name, len(scm.pushes),
                                                                                len(prs.records))))  # fmt: skip
    await n.open_pull_request(approved(), INCIDENT, Breakers())
    assert at_failpoint == [("notifier.after_push", 1, 0)]


async def test_an_unknown_repository_is_poison_and_nothing_is_pushed() -> None:
    n = notifier()
    scm, prs, notes = ports(n)
    with pytest.raises(Poison, match="'elsewhere' is not registered"):
        await n.open_pull_request(approved(repo="elsewhere"), INCIDENT, Breakers())
    assert scm.pushes == [] and prs.records == {} and notes.sent == []


async def test_an_scm_outage_is_transient_and_leaves_no_record() -> None:
    n = notifier(MemoryScm(failures=1))
    scm, prs, notes = ports(n)
    breakers = Breakers()
    with pytest.raises(Transient, match="scm call failed"):
        await n.open_pull_request(approved(), INCIDENT, breakers)
    assert scm.pushes == [] and prs.records == {} and notes.sent == []
    await n.open_pull_request(approved(), INCIDENT, breakers)  # the retry goes through
    assert len(scm.pushes) == 1 and len(prs.records) == 1


# ---------------------------------------------------------------- notifications


def requested() -> ApprovalRequested:
    payload = ApprovalRequestedPayload(risk=RISK, repo="shop", summary="Revert coupons — 12 passed")
    return ApprovalRequested.create(payload, source="review", incident_id=INCIDENT)


async def test_an_approval_request_is_notified_once_with_how_to_decide() -> None:
    n = notifier()
    notes = ports(n)[2]
    event = requested()
    [first] = await n.approval_requested(event)
    [again] = await n.approval_requested(event)
    assert (first.event_id, first.payload) == (again.event_id, again.payload)
    [note] = notes.sent
    assert (note.about, note.kind, note.channel, note.incident_id) == (event.event_id, "approval.requested", "log",
                                                                       INCIDENT)  # fmt: skip
    assert f"pagerpatch approve {INCIDENT}" in note.text and "HIGH: touches protected path(s)" in note.text
    assert isinstance(first, NotificationSent) and first.payload.text == note.text


async def test_rejections_and_failures_are_notified_once_each() -> None:
    n = notifier()
    notes = ports(n)[2]
    rejected = FixRejected.create(FixRejectedPayload(rejected_by="erin", reason="wrong table"), source="review",
                                  incident_id=INCIDENT)  # fmt: skip
    failed = FixFailed.create(FixFailedPayload(repo="shop", reason="tests kept failing", attempts=3),
                              source="fixgen", incident_id=INCIDENT)  # fmt: skip
    for _ in range(2):
        await n.fix_rejected(rejected)
        await n.fix_failed(failed)
    assert [(s.about, s.kind, s.text) for s in notes.sent] == [
        (rejected.event_id, "fix.rejected", f"fix for incident {INCIDENT} rejected by erin: wrong table"),
        (failed.event_id, "fix.failed", f"no validated fix for incident {INCIDENT}: tests kept failing"),
    ]


# ---------------------------------------------------------------- the handlers' guard


async def test_the_approved_handler_refuses_an_event_without_incident() -> None:
    n = notifier()
    ctx = StageContext(service="notifier", consumer=streams.consumer("notifier-approved"), settings=Settings(),
                       breakers=Breakers(), deps=n)  # fmt: skip
    with pytest.raises(Poison, match=r"fix\.approved without incident_id"):
        await handlers.on_approved(approved().model_copy(update={"incident_id": None}), ctx)
    assert ports(n)[0].pushes == []

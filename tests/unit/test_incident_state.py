"""Incident state machine: forward-only by rank, terminal states stick, failures/rejections always end it."""

from __future__ import annotations

import pytest

from pagerpatch.incidents import next_state

FORWARD = ["open", "diagnosed", "fix_validated", "awaiting_approval", "approved", "pr_opened"]
EVENT_FOR = {
    "open": "incident.opened",
    "diagnosed": "diagnosis.ready",
    "fix_validated": "fix.validated",
    "awaiting_approval": "approval.requested",
    "approved": "fix.approved",
    "pr_opened": "pr.opened",
}
TERMINAL = ["failed", "rejected", "pr_closed", "resolved"]
ALL_EVENTS = [*EVENT_FOR.values(), "fix.failed", "fix.rejected"]


@pytest.mark.parametrize(
    ("current", "event_type", "expected"),
    [
        ("open", "diagnosis.ready", "diagnosed"),
        ("diagnosed", "fix.validated", "fix_validated"),
        ("fix_validated", "approval.requested", "awaiting_approval"),
        ("awaiting_approval", "fix.approved", "approved"),
        ("approved", "pr.opened", "pr_opened"),
        # skipping ahead is fine (e.g. a low-risk fix is approved without approval.requested)
        ("fix_validated", "fix.approved", "approved"),
        ("open", "pr.opened", "pr_opened"),
        # a state unknown to the ranking is behind every ranked one
        ("new", "incident.opened", "open"),
        ("", "diagnosis.ready", "diagnosed"),
    ],
)
def test_moves_forward(current: str, event_type: str, expected: str) -> None:
    assert next_state(current, event_type) == expected


@pytest.mark.parametrize(
    ("current", "event_type"),
    [
        ("diagnosed", "incident.opened"),  # a late incident.opened does not move it back
        ("fix_validated", "diagnosis.ready"),
        ("approved", "approval.requested"),
        ("pr_opened", "fix.approved"),
        ("pr_opened", "incident.opened"),
        ("awaiting_approval", "fix.validated"),
        ("awaiting_approval", "approval.requested"),
        ("diagnosed", "diagnosis.ready"),  # same state again
    ],
)
def test_never_moves_backward(current: str, event_type: str) -> None:
    assert next_state(current, event_type) == current


@pytest.mark.parametrize(
    ("current", "event_type"),
    [(state, event) for state in TERMINAL for event in ALL_EVENTS],
)
def test_terminal_states_stick(current: str, event_type: str) -> None:
    assert next_state(current, event_type) == current


@pytest.mark.parametrize("current", FORWARD)
@pytest.mark.parametrize(("event_type", "expected"), [("fix.failed", "failed"), ("fix.rejected", "rejected")])
def test_failure_and_rejection_are_terminal_from_any_live_state(current: str, event_type: str, expected: str) -> None:
    assert next_state(current, event_type) == expected


@pytest.mark.parametrize("current", [*FORWARD, *TERMINAL])
@pytest.mark.parametrize("event_type", ["alert.received", "notification.sent", "pr.event", "nonsense", ""])
def test_unknown_or_stateless_event_types_leave_state(current: str, event_type: str) -> None:
    assert next_state(current, event_type) == current

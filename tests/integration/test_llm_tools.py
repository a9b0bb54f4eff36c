"""The tool-use loop: tool definitions, parallel execution, timeouts, truncation, permissions, context discipline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from pagerpatch.llm import LlmRuntime, ToolOutput, ToolRegistry
from pagerpatch.llm.context import FACTS_MARKER
from pagerpatch.llm.structured import tool_name
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.llm_env import ECHO_TOOL, llm_settings, registry_with_echo, write_config

pytestmark = pytest.mark.integration


class RootCause(BaseModel):
    summary: str
    file: str


FINAL = tool_name(RootCause)


def tool(name: str, permissions: list[str], **extra: Any) -> dict[str, Any]:
    return {**ECHO_TOOL, "description": f"{name} tool", "permissions": permissions, **extra}


def agent(tools: list[str], permissions: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "investigator": {
            "system_prompts": ["prompts/investigator.md"],
            "tools": tools,
            "permissions": permissions,
            **extra,
        }
    }


def runtime(fake: FakeAnthropic, pool: asyncpg.Pool, registry: ToolRegistry, config: Path, **llm: Any) -> LlmRuntime:
    """The agent runtime on the fake Messages API, with `registry`'s tools bound to the config directory `config`."""
    return LlmRuntime.create(llm_settings(fake.url, config, **llm), pool, registry)


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        b
        for m in body["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    ]


def result_text(block: dict[str, Any]) -> str:
    c = block["content"]
    return c if isinstance(c, str) else "".join(x.get("text", "") for x in c)


async def test_parallel_tools_run_concurrently_and_the_answer_is_validated(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    # Each tool waits for the other's event: only concurrent execution lets both finish before the timeout.
    a_ready, b_ready = asyncio.Event(), asyncio.Event()

    async def left(value: str) -> str:
        a_ready.set()
        await b_ready.wait()
        return f"left saw {value}"

    async def right(value: str) -> str:
        b_ready.set()
        await a_ready.wait()
        return f"right saw {value}"

    reg = ToolRegistry()
    reg.register("left", left)
    reg.register("right", right)
    tools = {
        "left": tool("left", ["logs:read"], sandbox={"timeout_s": 2}),
        "right": tool("right", ["logs:read"], sandbox={"timeout_s": 2}),
    }
    cfg = write_config(tmp_path / "cfg", tools=tools, agents=agent(["left", "right"], ["logs:read"]))
    rt = runtime(fake_anthropic, pool, reg, cfg)
    fake_anthropic.script(
        fa.tool_uses([("left", {"value": "A"}, "t1"), ("right", {"value": "B"}, "t2")], say="checking both"),
        fa.tool_use(FINAL, {"summary": "coupon lookup raises KeyError", "file": "pricing.py"}),
    )
    result = await rt.run_tools(agent="investigator", step="investigate", prompt="Why 500s?", output=RootCause)

    assert result.outcome == "completed" and result.output == RootCause(
        summary="coupon lookup raises KeyError", file="pricing.py"
    )
    assert [(c.name, c.outcome) for c in result.tool_calls] == [("left", "ok"), ("right", "ok")]
    first, second = (r.body for r in fake_anthropic.requests)
    assert [t["name"] for t in first["tools"]] == ["left", "right", FINAL]
    assert first["tools"][0]["input_schema"] == ECHO_TOOL["parameters"]
    assert first["tools"][0]["description"] == "left tool"
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in first["tools"][0]
    assert "tool_choice" not in first
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    results = {b["tool_use_id"]: result_text(b) for b in tool_results(second)}
    assert results == {"t1": "left saw A", "t2": "right saw B"}
    assert second["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "checking both"},
            {"type": "tool_use", "id": "t1", "name": "left", "input": {"value": "A"}},
            {"type": "tool_use", "id": "t2", "name": "right", "input": {"value": "B"}},
        ],
    }
    assert result.spent.calls == 2 and result.spent.cost_usd > 0


async def test_slow_tool_times_out_and_long_output_is_truncated_with_a_marker(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    async def slow(value: str) -> str:
        await asyncio.sleep(30)
        return value

    def huge(value: str) -> str:  # a plain function runs in a thread
        return "x" * 5000 + "TAIL-NEVER-SEEN"

    reg = ToolRegistry()
    reg.register("slow", slow)
    reg.register("huge", huge)
    tools = {"slow": tool("slow", [], sandbox={"timeout_s": 0.3}), "huge": tool("huge", [])}
    cfg = write_config(tmp_path / "cfg", tools=tools, agents=agent(["slow", "huge"], []))
    rt = runtime(fake_anthropic, pool, reg, cfg, tool_output_limit_chars=1000)
    fake_anthropic.script(
        fa.tool_uses([("slow", {"value": "a"}, "s1"), ("huge", {"value": "b"}, "h1")]),
        fa.text("nothing more to do"),
    )
    result = await rt.run_tools(agent="investigator", step="investigate", prompt="go")
    assert result.outcome == "completed" and result.text == "nothing more to do" and result.output is None
    blocks = {b["tool_use_id"]: b for b in tool_results(fake_anthropic.requests[1].body)}
    assert blocks["s1"]["is_error"] is True and "timed out after 0.3s" in result_text(blocks["s1"])
    huge_text = result_text(blocks["h1"])
    assert huge_text.startswith("x" * 1000) and "TAIL-NEVER-SEEN" not in huge_text
    assert "[TRUNCATED: tool output was 5015 characters; only the first 1000 are shown" in huge_text
    assert "is_error" not in blocks["h1"]


async def test_tool_call_outside_the_agents_permissions_is_refused_and_audited(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    ran: list[str] = []

    def run_shell(value: str) -> str:
        ran.append(value)
        return "executed"

    reg = registry_with_echo()
    reg.register("run_shell", run_shell)
    tools = {"echo": tool("echo", ["logs:read"]), "run_shell": tool("run_shell", ["shell:exec"])}
    cfg = write_config(tmp_path / "cfg", tools=tools, agents=agent(["echo"], ["logs:read"]))
    rt = runtime(fake_anthropic, pool, reg, cfg)
    fake_anthropic.script(
        fa.tool_uses([("run_shell", {"value": "rm -rf /"}, "bad"), ("echo", {"value": "hi"}, "ok")]),
        fa.text("done"),
    )
    incident = "0f4a0d6c-1c7e-4c53-9d0b-1f1f2a3b4c5d"
    result = await rt.run_tools(agent="investigator", step="investigate", prompt="go", incident_id=incident)

    assert ran == []  # never executed
    assert [t["name"] for t in fake_anthropic.requests[0].body["tools"]] == ["echo"]  # never offered
    assert [(c.name, c.outcome) for c in result.tool_calls] == [("run_shell", "refused"), ("echo", "ok")]
    blocks = {b["tool_use_id"]: b for b in tool_results(fake_anthropic.requests[1].body)}
    assert blocks["bad"]["is_error"] is True
    assert "Refused" in result_text(blocks["bad"]) and "not among agent 'investigator'" in result_text(blocks["bad"])
    rows = await pool.fetch("SELECT actor, action, incident_id, details FROM audit_log")
    assert len(rows) == 1
    assert (rows[0]["actor"], rows[0]["action"], str(rows[0]["incident_id"])) == (
        "agent:investigator",
        "tool.refused",
        incident,
    )
    assert rows[0]["details"]["tool"] == "run_shell" and rows[0]["details"]["arguments"] == {"value": "rm -rf /"}


async def test_invalid_arguments_are_returned_to_the_model(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(fake_anthropic, pool, registry_with_echo(), write_config(tmp_path / "cfg"))
    fake_anthropic.script(fa.tool_use("echo", {"wrong": 1}, id="e1"), fa.text("ok"))
    result = await rt.run_tools(agent="investigator", step="investigate", prompt="go")
    assert result.tool_calls[0].outcome == "invalid_arguments"
    [block] = tool_results(fake_anthropic.requests[1].body)
    assert block["is_error"] is True and "'value' is a required property" in result_text(block)


async def test_raw_outputs_are_replaced_by_facts_after_the_model_saw_them(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    def logs(value: str) -> ToolOutput:
        return ToolOutput(text=f"RAW-{value} " + "line\n" * 300, facts=[f"fact about {value}"])

    reg = ToolRegistry()
    reg.register("echo", logs)
    rt = runtime(fake_anthropic, pool, reg, write_config(tmp_path / "cfg"))
    fake_anthropic.script(
        fa.tool_use("echo", {"value": "one"}, id="c1"),
        fa.tool_use("echo", {"value": "two"}, id="c2"),
        fa.tool_use(FINAL, {"summary": "s", "file": "f.py"}),
    )
    result = await rt.run_tools(agent="investigator", step="investigate", prompt="go", output=RootCause)
    assert result.output is not None and result.turns == 3
    second, third = fake_anthropic.requests[1].body, fake_anthropic.requests[2].body
    assert "RAW-one" in result_text(tool_results(second)[0])  # the model sees the raw output once
    one, two = tool_results(third)
    assert "RAW-one" not in result_text(one) and result_text(one) == f"{FACTS_MARKER}\n- fact about one"
    assert "RAW-two" in result_text(two)
    assert len(json.dumps(third)) < len(json.dumps(second)) + 2000


async def test_step_budget_ends_with_a_forced_final_answer(
    fake_anthropic: FakeAnthropic, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    rt = runtime(fake_anthropic, pool, registry_with_echo(), write_config(tmp_path / "cfg"))
    fake_anthropic.script(
        *(fa.tool_use("echo", {"value": str(i)}) for i in range(3)),
        fa.tool_use(FINAL, {"summary": "partial", "file": "?"}),
    )
    result = await rt.run_tools(agent="investigator", step="investigate", prompt="go", output=RootCause, max_steps=3)
    assert result.outcome == "max_steps" and result.turns == 3
    assert result.output == RootCause(summary="partial", file="?")
    final = fake_anthropic.requests[3].body
    assert final["tool_choice"] == {"type": "tool", "name": FINAL}
    last = final["messages"][-1]["content"]
    assert last[-1]["text"].startswith("The step budget is used up")
    assert last[0]["type"] == "tool_result"  # results first, then the note, in one user message

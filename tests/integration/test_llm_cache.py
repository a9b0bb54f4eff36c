"""Prompt caching through the real runtime and SDK against the fake Messages API: the tool loop's requests carry
at most 4 cache markers, on an append-only prefix, so each step reads what the step before wrote."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
from pydantic import BaseModel

from pagerpatch.llm import LlmRuntime, ToolOutput, ToolRegistry
from pagerpatch.llm.context import FACTS_MARKER
from pagerpatch.llm.ledger import MemoryLedger
from pagerpatch.llm.structured import tool_name
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.llm_env import ECHO_TOOL, llm_settings, write_config

pytestmark = pytest.mark.integration


class RootCause(BaseModel):
    summary: str


class Notes:
    """A loop control: a `note` tool answered in code, and the notes so far as the state of every request."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def definitions(self) -> list[dict[str, Any]]:
        return [{"name": "note", "description": "Keep a note.", "input_schema": {"type": "object"}}]

    def handles(self, name: str) -> bool:
        return name == "note"

    def handle(self, name: str, arguments: dict[str, Any]) -> str:
        self.notes.append(str(arguments.get("text")))
        return "noted"

    def system(self) -> str | None:
        return "NOTES SO FAR: " + "; ".join(self.notes)


def marks(body: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Where a request's cache markers are: ("tools", i, 0), ("system", i, 0) or ("messages", message, block)."""
    system = body.get("system") or []
    out = [("tools", i, 0) for i, t in enumerate(body.get("tools") or []) if "cache_control" in t]
    out += [("system", i, 0) for i, b in enumerate(system) if "cache_control" in b]
    for m, msg in enumerate(body["messages"]):
        out += [("messages", m, b) for b, blk in enumerate(msg["content"]) if "cache_control" in blk]
    return out


def runtime(fake: FakeAnthropic, tmp_path: Path) -> LlmRuntime:
    def logs(value: str) -> ToolOutput:
        return ToolOutput(f"RAW-{value} " + "log line " * 600, facts=[f"{value}: 42 KeyError"])

    registry = ToolRegistry()
    registry.register("logs", logs)
    cfg = write_config(
        tmp_path / "cfg",
        tools={"logs": {**ECHO_TOOL, "description": "Search the logs.", "permissions": ["logs:read"]}},
        agents={
            "investigator": {
                "system_prompts": ["prompts/investigator.md"],
                "tools": ["logs"],
                "permissions": ["logs:read"],
            }
        },
    )
    return LlmRuntime.create(llm_settings(fake.url, cfg), None, registry)


async def test_each_step_reads_the_history_the_step_before_wrote(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    rt = runtime(fake_anthropic, tmp_path)
    fake_anthropic.script(
        fa.tool_uses([("logs", {"value": "a"}, "l1"), ("note", {"text": "first"}, "n1")], say="looking"),
        fa.tool_uses([("logs", {"value": "b"}, "l2")]),
        fa.tool_uses([("logs", {"value": "c"}, "l3"), ("note", {"text": "second"}, "n2")]),
        fa.tool_use(tool_name(RootCause), {"summary": "coupon lookup"}),
    )
    control = Notes()
    result = await rt.run_tools(
        agent="investigator", step="investigate", prompt="Why 500s?", output=RootCause, control=control
    )
    await rt.aclose()
    assert result.output == RootCause(summary="coupon lookup")
    bodies = [r.body for r in fake_anthropic.requests]
    assert len(bodies) == 4
    for n, body in enumerate(bodies):
        assert len(marks(body)) <= 4
        assert marks(body)[:2] == [("tools", 2, 0), ("system", 0, 0)]  # the last tool (the answer), the prompt file
        assert body["system"] == bodies[0]["system"]  # the control's state never changes the system prompt
        *_, last = marks(body)
        tail = json.dumps(body["messages"][last[1] :])
        if n > 0:  # this step's raw tool output comes after the last marker...
            assert f"RAW-{'abc'[n - 1]}" in tail
            assert last[1] == len(body["messages"]) - 2  # ...which ends the assistant turn that asked for it
        assert "RAW-" not in json.dumps(body["messages"][: last[1] + 1])  # nothing before it is ever replaced
        state = body["messages"][-1]["content"][-1]
        assert state["text"].startswith("NOTES SO FAR:") and "cache_control" not in state  # last, after the markers
    assert "NOTES SO FAR: first" in json.dumps(bodies[1]["messages"][-1]) and "first; second" in json.dumps(bodies[3])
    assert sum("NOTES SO FAR" in json.dumps(m) for m in bodies[3]["messages"]) == 1  # never kept in the history
    assert FACTS_MARKER in json.dumps(bodies[3]) and "RAW-a" not in json.dumps(bodies[2])  # context discipline

    assert isinstance(rt.ledger, MemoryLedger)
    usage = [c.usage for c in rt.ledger.calls]
    assert usage[0].cache_read_tokens == 0 and usage[0].cache_write_tokens > 0
    for before, now in itertools.pairwise(usage):
        # the whole prefix the previous request wrote is read, only the new part up to the marker written
        assert now.cache_read_tokens == before.cache_read_tokens + before.cache_write_tokens
        assert 0 < now.cache_write_tokens < now.input_tokens  # the new raw output (~1.5k tokens) is plain input
        assert now.input_tokens > 1000


async def test_more_than_four_markers_are_capped_by_the_runtime_and_refused_by_the_api(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    rt = runtime(fake_anthropic, tmp_path)
    fake_anthropic.script(fa.tool_use(tool_name(RootCause), {"summary": "ok"}))
    marked = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(4)]
    await rt.structured(
        agent="investigator", step="investigate", output=RootCause, messages=[{"role": "user", "content": marked}]
    )
    await rt.aclose()
    [sent] = fake_anthropic.requests
    assert marks(sent.body) == [("tools", 0, 0), ("system", 0, 0), ("messages", 0, 2), ("messages", 0, 3)]

    over_limit: Any = [{"role": "user", "content": marked}]  # with the system marker: 5 in all
    client = anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="sk-test", max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4 blocks with cache_control"):
        await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=10,
            system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            messages=over_limit,
        )
    await client.close()

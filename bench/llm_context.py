"""Benchmark: prompt tokens of a scripted 8-step investigation, with and without the context discipline.

    .venv/bin/python bench/llm_context.py [--steps 8] [--output-chars 6000]

The real runtime and SDK talk to the fake Messages API server (tests/support/fake_anthropic.py), which answers
each step with two parallel tool calls and finally the root cause; each tool returns `--output-chars` of log
text and a few facts. Then a report phase runs. Prompt tokens are counted from the requests the server received
(serialized system + messages + tools, len/4, the fake's own estimate), per step:

- without: raw tool outputs stay in the history; the report phase continues the same conversation;
- with:    after each step raw outputs are replaced by their facts; the report phase starts from a prompt rebuilt
           from the investigation's structured result only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel

from pagerpatch.llm import LlmRuntime, ToolOutput, ToolRegistry, phase_prompt
from pagerpatch.llm.structured import tool_name
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic, estimate_tokens
from tests.support.llm_env import ECHO_TOOL, llm_settings, write_config


class RootCause(BaseModel):
    summary: str
    file: str
    commit: str


class Report(BaseModel):
    title: str
    body: str


def make_registry(output_chars: int) -> ToolRegistry:
    def log_text(kind: str, query: str) -> str:
        line = f"2026-05-01T12:00:00Z ERROR checkout {kind} {query}: KeyError 'SUMMER25' in pricing.apply_coupon\n"
        return (line * (output_chars // len(line) + 1))[:output_chars]

    def search_logs(value: str) -> ToolOutput:
        return ToolOutput(log_text("logs", value), facts=[f"{value}: 1,204 KeyError 'SUMMER25' since 11:58"])

    def read_code(value: str) -> ToolOutput:
        return ToolOutput(log_text("code", value), facts=[f"{value}: apply_coupon indexes COUPONS[code] directly"])

    registry = ToolRegistry()
    registry.register("search_logs", search_logs)
    registry.register("read_code", read_code)
    return registry


def script(fake: FakeAnthropic, steps: int) -> None:
    for i in range(steps):
        fake.script(fa.tool_uses([("search_logs", {"value": f"q{i}"}, None), ("read_code", {"value": f"f{i}"}, None)]))
    fake.script(
        fa.tool_use(tool_name(RootCause), {"summary": "coupon lookup", "file": "pricing.py", "commit": "3f2a9c1"})
    )
    fake.script(fa.tool_use(tool_name(Report), {"title": "Fix coupon lookup", "body": "..."}))


async def run(disciplined: bool, steps: int, output_chars: int, cfg: Path) -> list[int]:
    fake = FakeAnthropic().start()
    try:
        script(fake, steps)
        rt = LlmRuntime.create(llm_settings(fake.url, cfg, max_steps=steps + 1), None, make_registry(output_chars))
        found = await rt.run_tools(
            agent="diagnosis",
            step="investigate",
            prompt="Checkout returns 500 since 11:58. Find the root cause.",
            output=RootCause,
            compress=disciplined,
        )
        assert found.output is not None
        if disciplined:
            report_conv = phase_prompt(found.output, phase="report", task="Write the incident report.")
            await rt.structured(agent="diagnosis", step="report", output=Report, messages=report_conv.messages())
        else:
            found.conversation.user("Write the incident report.")
            await rt.structured(agent="diagnosis", step="report", output=Report, messages=found.conversation.messages())
        return [estimate_tokens({k: r.body.get(k) for k in ("system", "messages", "tools")}) for r in fake.requests]
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--output-chars", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tools: dict[str, Any] = {
            "search_logs": {**ECHO_TOOL, "description": "Search the logs.", "permissions": ["logs:read"]},
            "read_code": {**ECHO_TOOL, "description": "Read code.", "permissions": ["logs:read"]},
        }
        agents = {
            "diagnosis": {
                "system_prompts": ["prompts/diagnosis.md"],
                "tools": ["search_logs", "read_code"],
                "permissions": ["logs:read"],
            }
        }
        prompt = (Path(__file__).resolve().parents[1] / "config" / "prompts" / "diagnosis.md").read_text()
        cfg = write_config(Path(tmp), tools=tools, agents=agents, prompts={"prompts/diagnosis.md": prompt})
        without = asyncio.run(run(False, args.steps, args.output_chars, cfg))
        with_ = asyncio.run(run(True, args.steps, args.output_chars, cfg))
    labels = [f"investigate {i + 1}" for i in range(args.steps)] + ["final answer", "report"]
    print(f"prompt tokens per call (len/4 of system+messages+tools; tool output {args.output_chars} chars x 2/step)")
    print(f"{'call':<16}{'without':>10}{'with':>10}{'ratio':>8}")
    for label, a, b in zip(labels, without, with_, strict=True):
        print(f"{label:<16}{a:>10}{b:>10}{b / a:>8.2f}")
    print(f"{'total':<16}{sum(without):>10}{sum(with_):>10}{sum(with_) / sum(without):>8.2f}")
    print(f"reduction: {100 * (1 - sum(with_) / sum(without)):.0f}% fewer prompt tokens with the context discipline")


if __name__ == "__main__":
    main()

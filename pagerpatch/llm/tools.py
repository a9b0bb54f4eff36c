"""Executing the tool calls of one turn: permission check, argument validation, concurrency, timeouts,
truncation with a visible marker, redaction, audit."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from opentelemetry import trace

from pagerpatch.kernel.redaction import redact, redact_data
from pagerpatch.llm.config import Governance
from pagerpatch.llm.ledger import CallRecord, Ledger, audit_details
from pagerpatch.llm.pricing import Usage
from pagerpatch.llm.registry import BoundTool, ToolContext, ToolOutput, ToolRegistry
from pagerpatch.settings import LlmSettings

log = logging.getLogger(__name__)

ToolOutcome = Literal["ok", "error", "refused", "timeout", "invalid_arguments"]
FACTS_FALLBACK_CHARS = 400


def truncation_marker(shown: int, total: int) -> str:
    return (
        f"\n\n[TRUNCATED: tool output was {total} characters; only the first {shown} are shown, "
        f"{total - shown} were cut. Narrow the request (filters, smaller ranges) to see the rest.]"
    )


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """At most `limit` characters of `text` plus a marker telling the model it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + truncation_marker(limit, len(text)), True


def fallback_facts(text: str) -> str:
    """When a tool gives no facts: its head, and how much was dropped."""
    if len(text) <= FACTS_FALLBACK_CHARS:
        return text
    return text[:FACTS_FALLBACK_CHARS] + f" … [{len(text) - FACTS_FALLBACK_CHARS} more characters dropped]"


@dataclass(frozen=True)
class ToolCall:
    """What happened to one tool_use block."""

    id: str
    name: str
    arguments: dict[str, Any]
    outcome: ToolOutcome
    content: str  # what the model was given (redacted, truncated)
    facts: str  # the compact form that may replace `content` later
    truncated: bool = False
    duration_ms: int = 0
    tool_facts: bool = False  # `facts` came from the tool itself (not the head-of-output fallback)

    def result_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": self.id, "content": self.content}
        if self.outcome != "ok":
            block["is_error"] = True
        return block


class ToolExecutor:
    """Runs the tool calls of a turn for one agent, at most `parallel` at a time."""

    def __init__(
        self,
        governance: Governance,
        registry: ToolRegistry,
        ledger: Ledger,
        settings: LlmSettings,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.tracer = tracer or trace.get_tracer("pagerpatch.llm")
        self.governance = governance
        self.registry = registry
        self.ledger = ledger
        self.settings = settings

    def offered(self, agent: str) -> list[BoundTool]:
        """The tools an agent is shown: its allowed tools that it holds the permissions for."""
        spec = self.governance.agent(agent)
        out = []
        for name in spec.tools:
            bound = self.registry.get(name)
            if bound is not None and self.governance.permitted(agent, name)[0]:
                out.append(bound)
        return out

    async def run_turn(
        self,
        uses: list[Any],
        *,
        agent: str,
        incident_id: str | None,
        team: str | None,
        parallel: int,
        extra: dict[str, Any],
    ) -> list[ToolCall]:
        gate = asyncio.Semaphore(parallel)

        async def one(use: Any) -> ToolCall:
            async with gate:
                return await self._run(use, agent=agent, incident_id=incident_id, team=team, extra=extra)

        return list(await asyncio.gather(*(one(u) for u in uses)))

    async def _run(
        self, use: Any, *, agent: str, incident_id: str | None, team: str | None, extra: dict[str, Any]
    ) -> ToolCall:
        name, call_id = str(use.name), str(use.id)
        args: dict[str, Any] = dict(use.input) if isinstance(use.input, dict) else {}
        allowed, why = self.governance.permitted(agent, name)
        bound = self.registry.get(name)
        if allowed and bound is None:
            allowed, why = False, self.registry.why_not(name)
        if not allowed or bound is None:
            # Refused in code: never executed, audited, and the model is told why.
            log.warning("refused tool call %s by agent %s: %s", name, agent, why)
            await self.ledger.audit(
                actor=f"agent:{agent}",
                action="tool.refused",
                incident_id=incident_id,
                details=audit_details(
                    {"tool": name, "tool_use_id": call_id, "reason": why, "arguments": redact_data(args)}
                ),
            )
            msg = f"Refused: {why}. This call was not executed."
            return ToolCall(call_id, name, args, "refused", msg, msg)
        problems = sorted(str(e.message) for e in Draft202012Validator(bound.spec.parameters).iter_errors(args))
        if problems:
            msg = "Invalid arguments: " + "; ".join(problems)[:2000]
            return ToolCall(call_id, name, args, "invalid_arguments", msg, msg)

        timeout = bound.spec.sandbox.timeout_s or self.settings.tool_timeout_s
        ctx = ToolContext(agent=agent, tool=name, incident_id=incident_id, team=team, spec=bound.spec, extra=extra)
        started = time.monotonic()
        outcome: ToolOutcome = "ok"
        facts: list[str] | None = None
        with self.tracer.start_as_current_span(f"execute_tool {name}") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": name,
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.type": "function",
                    "gen_ai.agent.name": agent,
                }
            )
            try:
                value = await asyncio.wait_for(self._invoke(bound, args, ctx), timeout=timeout)
                if isinstance(value, ToolOutput):
                    text, facts = value.text, value.facts
                    if value.is_error:
                        outcome = "error"
                else:
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            except TimeoutError:
                outcome, text = "timeout", f"Tool {name} timed out after {timeout:g}s and was cancelled."
            except Exception as exc:  # the model sees the failure and may try something else
                outcome, text = "error", f"Tool {name} failed: {type(exc).__name__}: {exc}"
            span.set_attribute("pagerpatch.tool.outcome", outcome)
        duration_ms = int((time.monotonic() - started) * 1000)
        content, truncated = truncate(redact(text), self.settings.tool_output_limit_chars)
        fact_text = redact("\n".join(f"- {f}" for f in facts)) if facts else fallback_facts(content)
        if bound.spec.audit:
            await self.ledger.audit(
                actor=f"agent:{agent}",
                action="tool.called",
                incident_id=incident_id,
                details=audit_details(
                    {
                        "tool": name,
                        "tool_use_id": call_id,
                        "arguments": redact_data(args),
                        "outcome": outcome,
                        "duration_ms": duration_ms,
                        "output_chars": len(text),
                    }
                ),
            )
        if bound.spec.cost_per_call_usd > 0:
            await self.ledger.record(
                CallRecord(
                    agent=agent,
                    step=f"tool:{name}",
                    team=team,
                    incident_id=incident_id,
                    provider="tool",
                    model=name,
                    usage=Usage(),
                    cost_usd=bound.spec.cost_per_call_usd,
                    latency_ms=duration_ms,
                    outcome="ok" if outcome == "ok" else "error",
                    kind="tool",
                )
            )
        return ToolCall(call_id, name, args, outcome, content, fact_text, truncated, duration_ms, bool(facts))

    @staticmethod
    async def _invoke(bound: BoundTool, args: dict[str, Any], ctx: ToolContext) -> Any:
        kwargs = {**args, "ctx": ctx} if bound.wants_ctx else args
        if inspect.iscoroutinefunction(bound.fn):
            return await bound.fn(**kwargs)
        result = await asyncio.to_thread(bound.fn, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

"""`LlmRuntime`: every model call of every agent goes through here, so cost, safety and context are the
platform's job. One call = redact → cache markers → budget check → breaker + retries → ledger row + span."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from pagerpatch.kernel import metrics, redaction
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.redaction import redact_data
from pagerpatch.llm import budgets, structured
from pagerpatch.llm.config import AgentSpec, Governance, llm_enabled, load_governance
from pagerpatch.llm.context import Conversation, cap_breakpoints
from pagerpatch.llm.errors import BudgetExceeded, LlmError, LlmUnavailable, StructuredOutputError
from pagerpatch.llm.ledger import CallRecord, Ledger, MemoryLedger, Outcome, PgLedger
from pagerpatch.llm.loop import LoopControl, LoopResult, run_tools
from pagerpatch.llm.pricing import Usage, cost_usd, estimate_cost_usd, price_for
from pagerpatch.llm.registry import ToolRegistry
from pagerpatch.llm.scope import CallScope, Spent
from pagerpatch.llm.tools import ToolExecutor
from pagerpatch.settings import Settings

if TYPE_CHECKING:
    from anthropic.types import Message

    from pagerpatch.llm.client import AnyClient, ProviderCaller

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
CACHE = {"type": "ephemeral"}
# Steps that run on the cheap model unless agents.yaml names a model for them.
CHEAP_STEPS = frozenset({"classify", "classification", "repair", "format", "formatting", "extract_facts"})


class LlmDisabled(LlmError):
    """No API key / base URL (or `llm.enabled: false`): callers use their deterministic strategy instead."""


class LlmRuntime:
    """The agent runtime. Build once per process with `LlmRuntime.create(settings, pool, registry)`."""

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger,
        governance: Governance,
        registry: ToolRegistry | None = None,
        breakers: Breakers | None = None,
        client: AnyClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.llm = settings.llm
        self.enabled = llm_enabled(settings)
        self.governance = governance
        self.registry = registry or ToolRegistry()
        self.tool_warnings = self.registry.bind(governance)
        self.ledger = ledger
        self.provider = self.llm.provider
        self.breakers = breakers or Breakers(
            threshold=self.llm.breaker_threshold, reset_after_s=self.llm.breaker_reset_s
        )
        self._client = client
        self._sleep = sleep
        self._caller: ProviderCaller | None = None
        self.tracer = trace.get_tracer("pagerpatch.llm", tracer_provider=tracer_provider)  # default: the global one
        self.tools = ToolExecutor(governance, self.registry, ledger, self.llm, self.tracer)
        self._now = now
        redaction.configure(governance.policies.redaction_patterns)

    @property
    def caller(self) -> ProviderCaller:
        """The provider client, made on first use (the SDK is only imported by a runtime that calls a model)."""
        if self._caller is None:
            from pagerpatch.llm.client import ProviderCaller, make_client

            client = self._client or make_client(self.settings)
            self._caller = ProviderCaller(client, self.provider, self.llm, self.breakers, sleep=self._sleep)
        return self._caller

    async def aclose(self) -> None:
        """Close the provider client if this runtime made it (in the event loop that used it)."""
        if self._caller is not None and self._client is None:
            await self._caller.client.close()
        self._caller = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        pool: asyncpg.Pool | None,
        registry: ToolRegistry | None = None,
        **kwargs: Any,
    ) -> LlmRuntime:
        """Validate the governance files (required when enabled) and bind the tools; raises `ConfigError`."""
        governance = load_governance(settings.llm.config_dir, required=llm_enabled(settings))
        ledger: Ledger = PgLedger(pool) if pool is not None else MemoryLedger()
        return cls(settings, ledger=ledger, governance=governance, registry=registry, **kwargs)

    # ------------------------------------------------------------------ model and prompt resolution
    def model_for(self, agent: str, step: str) -> str:
        spec = self.governance.agent(agent)
        step_spec = spec.steps.get(step)
        if step_spec is not None and step_spec.model:
            return step_spec.model
        if step in CHEAP_STEPS:
            return spec.cheap_model or self.llm.cheap_model
        return spec.model or self.llm.model

    def cheap_model_for(self, agent: str) -> str:
        return self.governance.agent(agent).cheap_model or self.llm.cheap_model

    def max_tokens_for(self, spec: AgentSpec, step: str) -> int:
        step_spec = spec.steps.get(step)
        return (step_spec.max_tokens if step_spec else None) or spec.max_tokens or self.llm.max_tokens

    def system_for(self, agent: str, step: str, extra: str | None = None) -> list[dict[str, Any]]:
        """Static prompt files (cached) then the call's own system text (not cached)."""
        spec = self.governance.agent(agent)
        files = list(spec.system_prompts) + (list(spec.steps[step].system_prompts) if step in spec.steps else [])
        blocks: list[dict[str, Any]] = [{"type": "text", "text": self.governance.prompt_texts[f]} for f in files]
        if blocks:
            blocks[-1]["cache_control"] = dict(CACHE)
        if extra:
            blocks.append({"type": "text", "text": extra})
        return blocks

    # ------------------------------------------------------------------ the one call
    async def call(self, scope: CallScope, request: dict[str, Any], spent: Spent | None = None) -> Message:
        """One model call with everything the platform owes it. Raises BudgetExceeded, LlmUnavailable, LlmError."""
        if not self.enabled:
            raise LlmDisabled("the LLM is not configured (set ANTHROPIC_API_KEY or llm.base_url)")
        req = dict(request)
        req["system"] = redact_data(req.get("system") or [])
        req["messages"] = redact_data(req["messages"])
        if req.get("tools"):
            tools = redact_data(req["tools"])
            tools[-1]["cache_control"] = dict(CACHE)
            req["tools"] = tools
        if not req["system"]:
            del req["system"]
        cap_breakpoints(req)
        model = str(req["model"])
        price = price_for(model, self.llm.prices)
        estimate = estimate_cost_usd(req, price)
        spec = self.governance.agent(scope.agent)
        limits = budgets.limits_for(
            spec, self.governance.policies.budgets, team=scope.team, incident=scope.incident_id is not None
        )
        spend = await self.ledger.spend(
            agent=scope.agent, team=scope.team, incident_id=scope.incident_id, now=self._now()
        )
        for near in budgets.nearing(spend, limits, self.governance.policies.budgets.warn_at):
            log.warning(
                "agent %s: %s budget %.0f%% used ($%.4f of $%.4f)",
                scope.agent,
                near.scope,
                100 * near.spent / near.limit,
                near.spent,
                near.limit,
            )
        breach = budgets.first_breach(spend, limits, estimate)

        with self.tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": _provider_name(self.provider),
                    "gen_ai.system": _provider_name(self.provider),
                    "gen_ai.request.model": model,
                    "gen_ai.request.max_tokens": int(req.get("max_tokens", 0)),
                    "gen_ai.agent.name": scope.agent,
                    "pagerpatch.step": scope.step,
                    "pagerpatch.team": scope.team or "",
                    "pagerpatch.incident_id": scope.incident_id or "",
                    "pagerpatch.cost.estimate_usd": estimate,
                }
            )
            if breach is not None:
                span.set_attribute("pagerpatch.outcome", "budget_exceeded")
                await self._record(scope, model, Usage(), 0.0, estimate, 0, "budget_exceeded", 0, str(breach.scope))
                raise BudgetExceeded(
                    scope=breach.scope, limit=breach.limit, spent=breach.spent, estimate=estimate, agent=scope.agent
                )
            started = time.monotonic()
            try:
                result = await self.caller.create(req)
            except LlmUnavailable as exc:
                await self._record(scope, model, Usage(), 0.0, estimate, _ms(started), "unavailable", 0, str(exc))
                span.set_attribute("pagerpatch.outcome", "unavailable")
                span.set_attribute("error.type", "LlmUnavailable")
                raise
            except LlmError as exc:
                await self._record(scope, model, Usage(), 0.0, estimate, _ms(started), "error", 0, str(exc))
                span.set_attribute("pagerpatch.outcome", "error")
                span.set_attribute("error.type", type(exc.__cause__ or exc).__name__)
                raise
            msg = result.message
            u = msg.usage
            usage = Usage(
                u.input_tokens, u.output_tokens, u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
            )
            cost = cost_usd(usage, price)
            await self._record(
                scope,
                model,
                usage,
                cost,
                estimate,
                _ms(started),
                "ok",
                result.attempts,
                None,
                getattr(msg, "_request_id", None) or msg.id,
            )
            span.set_attributes(
                {
                    "gen_ai.response.id": msg.id,
                    "gen_ai.response.model": msg.model,
                    "gen_ai.response.finish_reasons": [str(msg.stop_reason)],
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
                    "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
                    "pagerpatch.cost_usd": cost,
                    "pagerpatch.attempts": result.attempts,
                    "pagerpatch.outcome": "ok",
                }
            )
            if spent is not None:
                spent.add(usage, cost)
            return msg

    async def _record(
        self,
        scope: CallScope,
        model: str,
        usage: Usage,
        cost: float,
        estimate: float,
        latency_ms: int,
        outcome: Outcome,
        attempts: int,
        error: str | None,
        request_id: str | None = None,
    ) -> None:
        metrics.llm_call(scope.agent, model, outcome, usage, cost)
        await self.ledger.record(
            CallRecord(
                agent=scope.agent,
                step=scope.step,
                team=scope.team,
                incident_id=scope.incident_id,
                provider=self.provider,
                model=model,
                usage=usage,
                cost_usd=cost,
                estimate_usd=estimate,
                latency_ms=latency_ms,
                outcome=outcome,
                attempts=attempts,
                error=error,
                request_id=request_id,
                at=self._now(),
            )
        )

    # ------------------------------------------------------------------ structured output
    async def structured(
        self,
        *,
        agent: str,
        step: str,
        output: type[M],
        messages: list[dict[str, Any]] | None = None,
        prompt: str | None = None,
        system: str | None = None,
        incident_id: str | None = None,
        team: str | None = None,
        spent: Spent | None = None,
    ) -> M:
        """The model's answer as a validated `output`; one repair round per failure on the cheap model, bounded."""
        msgs = _messages(messages, prompt)
        spec = self.governance.agent(agent)
        scope = CallScope(agent, step, _str(incident_id), team)
        request = {
            "model": self.model_for(agent, step),
            "max_tokens": self.max_tokens_for(spec, step),
            "system": self.system_for(agent, step, system),
            "messages": msgs,
            "tools": [structured.output_tool(output)],
            "tool_choice": structured.forced(output),
        }
        msg = await self.call(scope, request, spent)
        _, answer = structured.answer_of(msg, output)
        return await self.validated(output, answer, scope, spent)

    async def validated(self, output: type[M], answer: Any, scope: CallScope, spent: Spent | None = None) -> M:
        """`answer` validated as `output`, repaired on the cheap model up to `llm.structured_retries` times."""
        value, errors = structured.validate(output, answer)
        repairs = 0
        while value is None:
            if repairs >= self.llm.structured_retries:
                await self._record(scope, "-", Usage(), 0.0, 0.0, 0, "invalid_output", 0, "; ".join(errors)[:2000])
                raise StructuredOutputError(
                    f"agent {scope.agent} step {scope.step}: answer invalid after {repairs} repair(s): {errors[:3]}",
                    errors=errors,
                    last_answer=answer,
                )
            repairs += 1
            log.info("agent %s step %s: repairing an invalid answer (%d): %s", scope.agent, scope.step, repairs, errors)
            repair = {
                "model": self.cheap_model_for(scope.agent),
                "max_tokens": self.max_tokens_for(self.governance.agent(scope.agent), scope.step),
                "system": [{"type": "text", "text": structured.REPAIR_SYSTEM, "cache_control": dict(CACHE)}],
                "messages": structured.repair_messages(output, answer, errors),
                "tools": [structured.output_tool(output)],
                "tool_choice": structured.forced(output),
            }
            repair_scope = CallScope(scope.agent, f"{scope.step}:repair", scope.incident_id, scope.team)
            msg = await self.call(repair_scope, repair, spent)
            _, answer = structured.answer_of(msg, output)
            value, errors = structured.validate(output, answer)
        return value

    # ------------------------------------------------------------------ tool loop
    async def run_tools(
        self,
        *,
        agent: str,
        step: str,
        messages: list[dict[str, Any]] | None = None,
        prompt: str | None = None,
        conversation: Conversation | None = None,
        output: type[M] | None = None,
        system: str | None = None,
        incident_id: str | None = None,
        team: str | None = None,
        max_steps: int | None = None,
        compress: bool = True,
        facts: Literal["tool", "llm"] = "tool",
        tool_context: dict[str, Any] | None = None,
        control: LoopControl | None = None,
        max_calls_per_turn: int | None = None,
    ) -> LoopResult[M]:
        """The tool-use loop for one agent step (pagerpatch/llm/loop.py); see docs/agent-runtime.md."""
        conv = conversation if conversation is not None else Conversation.of(_messages(messages, prompt))
        return await run_tools(
            self,
            agent=agent,
            step=step,
            conversation=conv,
            output=output,
            system=system,
            scope=CallScope(agent, step, _str(incident_id), team),
            max_steps=max_steps,
            compress=compress,
            facts=facts,
            tool_context=tool_context or {},
            control=control,
            max_calls_per_turn=max_calls_per_turn,
        )


def _messages(messages: list[dict[str, Any]] | None, prompt: str | None) -> list[dict[str, Any]]:
    if (messages is None) == (prompt is None):
        raise ValueError("give exactly one of `messages` or `prompt`")
    return list(messages) if messages is not None else [{"role": "user", "content": prompt}]


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _provider_name(provider: str) -> str:
    return {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}.get(provider, provider)

"""The tool-use loop: model turn → tool calls run concurrently → results back, until an answer or the step budget.

Context discipline: once the model has seen a turn's raw tool outputs, they are replaced in the conversation by
the facts drawn from them (from the tool, from the cheap model with `facts="llm"`, or the output's head).

Prompt caching: every request carries cache markers on the conversation's stable prefix (everything before the
newest raw tool outputs, `Conversation.messages(breakpoints=...)`), so each step reads the history the previous
step wrote; the system text stays the same from step to step, and the caller's state (the task list) rides at
the end of the request, after the last marker, without entering the history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field

from pagerpatch.llm import structured
from pagerpatch.llm.config import AgentSpec, Governance
from pagerpatch.llm.context import Conversation
from pagerpatch.llm.scope import CallScope, Spent
from pagerpatch.llm.tools import FACTS_FALLBACK_CHARS, ToolCall, ToolExecutor, ToolOutcome
from pagerpatch.settings import LlmSettings

if TYPE_CHECKING:  # the SDK's types are heavy to import; a service without a model never needs them
    from anthropic.types import Message

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound=BaseModel)


class ModelCaller(Protocol):
    """What the loop needs from the agent runtime (LlmRuntime is one): its governance and tools, and calls that
    are costed, budgeted and validated. The loop depends on this, never on the runtime module."""

    governance: Governance
    tools: ToolExecutor
    llm: LlmSettings

    def model_for(self, agent: str, step: str) -> str: ...  # pragma: no cover

    def max_tokens_for(self, spec: AgentSpec, step: str) -> int: ...  # pragma: no cover

    def system_for(
        self, agent: str, step: str, extra: str | None = None
    ) -> list[dict[str, Any]]: ...  # pragma: no cover

    async def call(
        self, scope: CallScope, request: dict[str, Any], spent: Spent | None = None
    ) -> Message: ...  # pragma: no cover

    async def validated(
        self, output: type[T], answer: Any, scope: CallScope, spent: Spent | None = None
    ) -> T: ...  # pragma: no cover

    async def structured(  # only the arguments the loop's fact extraction passes (the runtime takes more)
        self,
        *,
        agent: str,
        step: str,
        output: type[T],
        prompt: str,
        incident_id: str | None,
        team: str | None,
        spent: Spent | None,
    ) -> T: ...  # pragma: no cover


class LoopControl(Protocol):
    """What a caller may add to the loop (the investigation's task list is one): tools answered in code by the
    caller, never by the registry (so never permission-checked or audited: they touch nothing but the caller's
    own state), and a state text rebuilt before every model call. That text is the last block of the request's
    last user message, after the cache markers, and never enters the history: a change to it (a task done)
    leaves the cached system prompt and history intact, and no step carries an outdated copy."""

    def definitions(self) -> list[dict[str, Any]]: ...  # pragma: no cover

    def handles(self, name: str) -> bool: ...  # pragma: no cover

    def handle(self, name: str, arguments: dict[str, Any]) -> str: ...  # pragma: no cover

    def system(self) -> str | None: ...  # pragma: no cover


MESSAGE_BREAKPOINTS = 2  # of the API's 4 cache markers: tools and system prompt take the other two
FINAL_NOW = "Give your final answer now by calling the answer tool."
OUT_OF_STEPS = "The step budget is used up. Give your final answer now, with what you know, by calling the answer tool."


class ExtractedFacts(BaseModel):
    """The facts in a tool's output that matter for the investigation, each one short and self-contained."""

    facts: list[str] = Field(max_length=20)


@dataclass
class LoopResult(Generic[M]):
    """How the loop ended (`completed`, or `max_steps` when the step budget ran out), and what it produced."""

    outcome: Literal["completed", "max_steps"]
    output: M | None
    text: str
    conversation: Conversation
    turns: int
    tool_calls: list[ToolCall] = field(default_factory=list)
    spent: Spent = field(default_factory=Spent)


def _params(content: list[Any]) -> list[dict[str, Any]]:
    """Response blocks as request blocks (only the fields the API accepts back)."""
    out: list[dict[str, Any]] = []
    for b in content:
        if b.type == "text":
            out.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            out.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
        else:
            out.append(b.model_dump(mode="json", exclude_none=True))
    return out


async def run_tools(
    rt: ModelCaller,
    *,
    agent: str,
    step: str,
    conversation: Conversation,
    output: type[M] | None,
    system: str | None,
    scope: CallScope,
    max_steps: int | None,
    compress: bool,
    facts: Literal["tool", "llm"],
    tool_context: dict[str, Any],
    control: LoopControl | None = None,
    max_calls_per_turn: int | None = None,
) -> LoopResult[M]:
    spec = rt.governance.agent(agent)
    tools = [b.definition() for b in rt.tools.offered(agent)]
    if control is not None:
        tools += control.definitions()
    if output is not None:
        tools.append(structured.output_tool(output))
    limit = max_steps or spec.max_steps or rt.llm.max_steps
    parallel = spec.max_parallel_tools or rt.llm.max_parallel_tools
    base: dict[str, Any] = {
        "model": rt.model_for(agent, step),
        "max_tokens": rt.max_tokens_for(spec, step),
        "system": rt.system_for(agent, step, system),
    }
    if tools:
        base["tools"] = tools
    result: LoopResult[M] = LoopResult("completed", None, "", conversation, 0)

    for turn in range(1, limit + 1):
        result.turns = turn
        msg = await rt.call(scope, {**base, "messages": _request(conversation, control, compress)}, result.spent)
        tag = f"{step}:turn:{turn}"
        conversation.assistant(_params(msg.content), tag)
        result.text = "".join(b.text for b in msg.content if b.type == "text")
        uses = [b for b in msg.content if b.type == "tool_use"]
        final = next((u for u in uses if output is not None and u.name == structured.tool_name(output)), None)
        if final is not None and output is not None:
            closing = [
                {
                    "type": "tool_result",
                    "tool_use_id": u.id,
                    "content": "Answer recorded." if u is final else "Not executed: the final answer was given.",
                }
                for u in uses
            ]
            conversation.user(closing, tag)
            result.output = await rt.validated(output, final.input, scope, result.spent)
            return result
        if not uses:
            if output is not None:
                result.output = await _final_answer(
                    rt, base, conversation, control, compress, output, scope, result, FINAL_NOW
                )
            return result
        handled = {u.id: _control_call(control, u) for u in uses if control is not None and control.handles(u.name)}
        real = [u for u in uses if u.id not in handled]
        over = {u.id: _not_run(u, max_calls_per_turn) for u in real[max_calls_per_turn or len(real) :]}
        run = [u for u in real if u.id not in over]
        calls = await rt.tools.run_turn(
            run, agent=agent, incident_id=scope.incident_id, team=scope.team, parallel=parallel, extra=tool_context
        )
        if facts == "llm":
            calls = await _llm_facts(rt, scope, calls, result.spent)
        result.tool_calls.extend(calls)
        done = {c.id: c for c in calls} | handled | over
        calls = [done[u.id] for u in uses]  # the model's order
        if compress:
            conversation.compress_tool_results()  # earlier turns: the model has seen their raw outputs
        entry = conversation.user([c.result_block() for c in calls], tag)
        entry.facts = {c.id: c.facts for c in calls if c.facts != c.content}

    result.outcome = "max_steps"
    if output is not None:
        result.output = await _final_answer(
            rt, base, conversation, control, compress, output, scope, result, OUT_OF_STEPS
        )
    return result


def _request(conversation: Conversation, control: LoopControl | None, compress: bool) -> list[dict[str, Any]]:
    """The request's messages: cache markers on the stable prefix, then the control's state text at the end."""
    messages = conversation.messages(breakpoints=MESSAGE_BREAKPOINTS, compressing=compress)
    state = control.system() if control is not None else None
    if state:
        if messages and messages[-1]["role"] == "user":
            messages[-1]["content"].append({"type": "text", "text": state})
        else:
            messages.append({"role": "user", "content": [{"type": "text", "text": state}]})
    return messages


def _control_call(control: LoopControl | None, use: Any) -> ToolCall:
    """A control tool's call, answered in code by the caller (never a registry tool)."""
    args: dict[str, Any] = dict(use.input) if isinstance(use.input, dict) else {}
    assert control is not None
    outcome: ToolOutcome = "ok"
    try:
        text = control.handle(str(use.name), args)
    except ValueError as exc:
        text, outcome = f"Invalid arguments: {exc}", "invalid_arguments"
    return ToolCall(str(use.id), str(use.name), args, outcome, text, text)


def _not_run(use: Any, limit: int | None) -> ToolCall:
    """A call past the per-turn limit: not executed; the model may ask again in its next step."""
    msg = f"Not executed: at most {limit} tool calls per step. Ask for it again in the next step if still needed."
    args: dict[str, Any] = dict(use.input) if isinstance(use.input, dict) else {}
    return ToolCall(str(use.id), str(use.name), args, "error", msg, msg)


async def _final_answer(
    rt: ModelCaller,
    base: dict[str, Any],
    conversation: Conversation,
    control: LoopControl | None,
    compress: bool,
    output: type[M],
    scope: CallScope,
    result: LoopResult[M],
    note: str,
) -> M:
    conversation.user(note, f"{scope.step}:final")
    messages = _request(conversation, control, compress)
    request = {**base, "messages": messages, "tool_choice": structured.forced(output)}
    msg = await rt.call(scope, request, result.spent)
    conversation.assistant(_params(msg.content), f"{scope.step}:final")
    _, answer = structured.answer_of(msg, output)
    return await rt.validated(output, answer, scope, result.spent)


async def _llm_facts(rt: ModelCaller, scope: CallScope, calls: list[ToolCall], spent: Spent) -> list[ToolCall]:
    """Facts of long outputs drawn by the cheap model (step `extract_facts`), concurrently."""

    async def one(c: ToolCall) -> ToolCall:
        if c.outcome != "ok" or c.tool_facts or len(c.content) <= FACTS_FALLBACK_CHARS:
            return c
        got = await rt.structured(
            agent=scope.agent,
            step="extract_facts",
            output=ExtractedFacts,
            prompt=f"Extract the facts that matter for an incident investigation from this output of tool "
            f"`{c.name}` called with {c.arguments}:\n<output>\n{c.content}\n</output>",
            incident_id=scope.incident_id,
            team=scope.team,
            spent=spent,
        )
        return ToolCall(
            c.id,
            c.name,
            c.arguments,
            c.outcome,
            c.content,
            "\n".join(f"- {f}" for f in got.facts),
            c.truncated,
            c.duration_ms,
            True,
        )

    return list(await asyncio.gather(*(one(c) for c in calls)))

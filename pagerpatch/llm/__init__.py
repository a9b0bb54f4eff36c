"""The agent runtime: every model call goes through `LlmRuntime` (docs/agent-runtime.md).

    runtime = LlmRuntime.create(settings, pool, registry)      # validates tools/agents/policies; binds tools
    if runtime.enabled:
        hint = await runtime.structured(agent="triage", step="classify", output=Hint, prompt=..., incident_id=...)
        result = await runtime.run_tools(agent="diagnosis", step="investigate", prompt=..., output=RootCause)

Errors to handle: `BudgetExceeded` (escalate to a human), `LlmUnavailable` (a `Transient`: the message waits),
`StructuredOutputError` and `LlmError`. Names are imported lazily so that importing the governance models (config
check, review) does not load the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pagerpatch.kernel.redaction import redact
    from pagerpatch.llm.config import Governance, load_governance
    from pagerpatch.llm.context import Conversation, phase_prompt
    from pagerpatch.llm.errors import BudgetExceeded, LlmError, LlmUnavailable, StructuredOutputError
    from pagerpatch.llm.ledger import CallRecord, MemoryLedger, PgLedger
    from pagerpatch.llm.loop import LoopResult
    from pagerpatch.llm.registry import ToolContext, ToolOutput, ToolRegistry
    from pagerpatch.llm.runtime import LlmDisabled, LlmRuntime
    from pagerpatch.llm.scope import Spent
    from pagerpatch.llm.tools import ToolCall

_EXPORTS = {
    "Governance": "pagerpatch.llm.config",
    "load_governance": "pagerpatch.llm.config",
    "Conversation": "pagerpatch.llm.context",
    "phase_prompt": "pagerpatch.llm.context",
    "BudgetExceeded": "pagerpatch.llm.errors",
    "LlmError": "pagerpatch.llm.errors",
    "LlmUnavailable": "pagerpatch.llm.errors",
    "StructuredOutputError": "pagerpatch.llm.errors",
    "CallRecord": "pagerpatch.llm.ledger",
    "MemoryLedger": "pagerpatch.llm.ledger",
    "PgLedger": "pagerpatch.llm.ledger",
    "LoopResult": "pagerpatch.llm.loop",
    "ToolContext": "pagerpatch.llm.registry",
    "ToolOutput": "pagerpatch.llm.registry",
    "ToolRegistry": "pagerpatch.llm.registry",
    "LlmDisabled": "pagerpatch.llm.runtime",
    "LlmRuntime": "pagerpatch.llm.runtime",
    "Spent": "pagerpatch.llm.scope",
    "ToolCall": "pagerpatch.llm.tools",
    "redact": "pagerpatch.kernel.redaction",
}

__all__ = [
    "BudgetExceeded",
    "CallRecord",
    "Conversation",
    "Governance",
    "LlmDisabled",
    "LlmError",
    "LlmRuntime",
    "LlmUnavailable",
    "LoopResult",
    "MemoryLedger",
    "PgLedger",
    "Spent",
    "StructuredOutputError",
    "ToolCall",
    "ToolContext",
    "ToolOutput",
    "ToolRegistry",
    "load_governance",
    "phase_prompt",
    "redact",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pagerpatch.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

"""Typed outcomes of the agent runtime that a caller must handle (never silent)."""

from __future__ import annotations

from typing import Any, Literal

from pagerpatch.kernel.errors import Transient

BudgetScope = Literal["agent", "agent_incident", "team", "incident", "day"]


class LlmError(Exception):
    """A model call failed for a reason retrying will not fix (bad request, authentication, …)."""


class LlmUnavailable(Transient):
    """The provider is down, overloaded or its breaker is open: the stage's message waits and is retried."""


class BudgetExceeded(Exception):
    """A hard budget would be exceeded: the call was not made. Outcome `budget_exceeded`; escalate to a human.

    `scope` is which budget (agent, agent_incident, team, incident, day), `limit` its USD limit, `spent` what the
    ledger already holds for it and `estimate` the refused call's conservative cost estimate.
    """

    outcome = "budget_exceeded"

    def __init__(self, *, scope: BudgetScope, limit: float, spent: float, estimate: float, agent: str) -> None:
        super().__init__(
            f"budget_exceeded: {scope} budget of ${limit:.4f} for agent {agent!r} "
            f"(spent ${spent:.4f}, this call up to ${estimate:.4f})"
        )
        self.scope: BudgetScope = scope
        self.limit = limit
        self.spent = spent
        self.estimate = estimate
        self.agent = agent


class StructuredOutputError(LlmError):
    """The model's answer still failed validation after the bounded repair attempts."""

    def __init__(self, message: str, *, errors: list[str], last_answer: Any) -> None:
        super().__init__(message)
        self.errors = errors
        self.last_answer = last_answer

"""Small value types shared by the runtime modules."""

from __future__ import annotations

from dataclasses import dataclass, field

from pagerpatch.llm.pricing import Usage


@dataclass(frozen=True)
class CallScope:
    """Who a call is for: ledger row, budgets and span attributes all come from here."""

    agent: str
    step: str
    incident_id: str | None
    team: str | None


@dataclass
class Spent:
    """Usage and cost of one runtime operation (all its calls, repairs included)."""

    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    calls: int = 0

    def add(self, usage: Usage, cost: float) -> None:
        self.usage, self.cost_usd, self.calls = self.usage + usage, self.cost_usd + cost, self.calls + 1

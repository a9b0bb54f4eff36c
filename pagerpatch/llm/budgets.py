"""Budget decisions (pure): would a call of estimated cost push any hard limit over?"""

from __future__ import annotations

from dataclasses import dataclass

from pagerpatch.llm.config import AgentSpec, BudgetPolicy
from pagerpatch.llm.errors import BudgetScope


@dataclass(frozen=True)
class Spend:
    """USD already in the ledger for each scope (days are UTC)."""

    agent_day: float = 0.0
    agent_incident: float = 0.0
    team_day: float = 0.0
    incident: float = 0.0
    day: float = 0.0


@dataclass(frozen=True)
class Limits:
    agent_day: float | None = None
    agent_incident: float | None = None
    team_day: float | None = None
    incident: float | None = None
    day: float | None = None


@dataclass(frozen=True)
class Breach:
    scope: BudgetScope
    limit: float
    spent: float


_SCOPES: tuple[tuple[str, BudgetScope], ...] = (
    ("agent_day", "agent"),
    ("agent_incident", "agent_incident"),
    ("team_day", "team"),
    ("incident", "incident"),
    ("day", "day"),
)


def limits_for(agent: AgentSpec, policy: BudgetPolicy, *, team: str | None, incident: bool) -> Limits:
    """The limits that apply to one call; incident limits only when the call belongs to an incident."""
    return Limits(
        agent_day=agent.budget.per_day_usd,
        agent_incident=agent.budget.per_incident_usd if incident else None,
        team_day=policy.team_limit(team) if team is not None else None,
        incident=policy.per_incident_usd if incident else None,
        day=policy.per_day_usd,
    )


def first_breach(spend: Spend, limits: Limits, estimate: float) -> Breach | None:
    """The first hard limit that `spent + estimate` would exceed, or None when the call may go ahead."""
    for attr, scope in _SCOPES:
        limit = getattr(limits, attr)
        spent = getattr(spend, attr)
        if limit is not None and spent + estimate > limit:
            return Breach(scope, limit, spent)
    return None


def nearing(spend: Spend, limits: Limits, warn_at: float) -> list[Breach]:
    """Scopes whose spending has passed `warn_at` of their limit (for a warning, not a refusal)."""
    out = []
    for attr, scope in _SCOPES:
        limit = getattr(limits, attr)
        spent = getattr(spend, attr)
        if limit is not None and limit > 0 and spent >= warn_at * limit:
            out.append(Breach(scope, limit, spent))
    return out

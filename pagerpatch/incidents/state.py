"""The incident state machine (pure): which state an incident is in after an event, and its timeline rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.envelope import Event

# The state an incident is in once an event of this type exists. States only move forward (by rank),
# except the terminal ones, which always win.
STATE_AFTER: dict[str, str] = {
    "incident.opened": "open",
    "diagnosis.ready": "diagnosed",
    "fix.validated": "fix_validated",
    "fix.failed": "failed",
    "approval.requested": "awaiting_approval",
    "fix.approved": "approved",
    "fix.rejected": "rejected",
    "pr.opened": "pr_opened",
}
RANK = {"open": 1, "diagnosed": 2, "fix_validated": 3, "awaiting_approval": 4, "approved": 5, "pr_opened": 6}
# The one list of terminal states (the incidents_one_live_per_fingerprint index in the migrations says the same).
TERMINAL: tuple[str, ...] = ("resolved", "rejected", "failed", "pr_closed")
# States triage may close on a resolution: the pipeline has not yet produced a fix for a person to look at.
CLOSABLE: frozenset[str] = frozenset({"open", "diagnosed"})


def is_terminal(state: str) -> bool:
    return state in TERMINAL


def next_state(current: str, event_type: str) -> str:
    """The state after `event_type` happened to an incident in `current`."""
    target = STATE_AFTER.get(event_type)
    if target is None or current in TERMINAL:
        return current
    if target in TERMINAL:
        return target
    return target if RANK.get(target, 0) > RANK.get(current, 0) else current


def summarize(event: Event[Any]) -> str:
    p = event.payload
    for attr in ("title", "root_cause", "reason", "branch", "summary", "decision", "text"):
        value = getattr(p, attr, None)
        if value:
            return str(value).splitlines()[0][:300]
    return ""


def changes_state(events: Sequence[Event[Any]]) -> bool:
    """Whether recording `events` may move an incident's state (otherwise only timeline rows are added)."""
    return any(e.incident_id is not None and e.type in STATE_AFTER for e in events)


def outcome_of(event: Event[Any]) -> str:
    """What a terminal incident records as its outcome."""
    return f"{event.type}: {summarize(event)}"


@dataclass(frozen=True)
class TimelineRows:
    """incident_events rows as parallel arrays, for one `unnest` insert."""

    event_ids: list[uuid.UUID]
    incident_ids: list[uuid.UUID]
    types: list[str]
    sources: list[str]
    occurred_at: list[datetime]
    summaries: list[str]

    def args(self) -> tuple[list[Any], ...]:
        return (self.event_ids, self.incident_ids, self.types, self.sources, self.occurred_at, self.summaries)


def timeline_rows(events: Sequence[Event[Any]]) -> TimelineRows:
    tracked = [e for e in events if e.incident_id is not None]
    return TimelineRows(
        event_ids=[e.event_id for e in tracked],
        incident_ids=[e.incident_id for e in tracked if e.incident_id is not None],
        types=[e.type for e in tracked],
        sources=[e.source for e in tracked],
        occurred_at=[e.occurred_at for e in tracked],
        summaries=[summarize(e) for e in tracked],
    )

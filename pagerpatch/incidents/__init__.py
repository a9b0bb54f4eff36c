"""Incidents: the pure state machine (`state`) and the one repository that owns their SQL (`repository`)."""

from pagerpatch.incidents.repository import IncidentRepository, IncidentView, finish_handoff, record
from pagerpatch.incidents.state import (
    CLOSABLE,
    STATE_AFTER,
    TERMINAL,
    TimelineRows,
    changes_state,
    is_terminal,
    next_state,
    summarize,
    timeline_rows,
)

__all__ = [
    "CLOSABLE",
    "STATE_AFTER",
    "TERMINAL",
    "IncidentRepository",
    "IncidentView",
    "TimelineRows",
    "changes_state",
    "finish_handoff",
    "is_terminal",
    "next_state",
    "record",
    "summarize",
    "timeline_rows",
]

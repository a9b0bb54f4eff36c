"""Triage's pure rules: an alert's identity (`fingerprint`), its facts and the values the rules exchange (`facts`),
severity (`severity`), rule matching (`matching`), what the group's history says (`history`) and the decision
itself (`rules.decide`). Plain values in, plain values out: no I/O anywhere in this package."""

from services.triage.domain.facts import (
    AlertFacts,
    Classification,
    Decision,
    Hint,
    LiveIncident,
    Member,
    Observation,
    facts,
)
from services.triage.domain.fingerprint import AlertKeys, IdentityRules, fingerprint, keys, normalize_title, top_frames
from services.triage.domain.history import blast_radius, closed_recently, firing_since, latest_states, state_changes
from services.triage.domain.matching import in_maintenance, matches
from services.triage.domain.rules import UNDECIDED, decide
from services.triage.domain.severity import SeverityDecision, severity

__all__ = [
    "UNDECIDED",
    "AlertFacts",
    "AlertKeys",
    "Classification",
    "Decision",
    "Hint",
    "IdentityRules",
    "LiveIncident",
    "Member",
    "Observation",
    "SeverityDecision",
    "blast_radius",
    "closed_recently",
    "decide",
    "facts",
    "fingerprint",
    "firing_since",
    "in_maintenance",
    "keys",
    "latest_states",
    "matches",
    "normalize_title",
    "severity",
    "state_changes",
    "top_frames",
]

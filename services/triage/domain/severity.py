"""An alert's severity (pure): the source's word, else its kind, else the default; then tier and blast radius."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import Severity

SEVERITY_WORDS: dict[str, Severity] = {
    "p0": Severity.P0, "sev0": Severity.P0, "sev-0": Severity.P0, "emergency": Severity.P0, "fatal": Severity.P0,
    "p1": Severity.P1, "sev1": Severity.P1, "sev-1": Severity.P1, "critical": Severity.P1, "high": Severity.P1,
    "error": Severity.P2, "p2": Severity.P2, "sev2": Severity.P2, "sev-2": Severity.P2, "major": Severity.P2,
    "medium": Severity.P2, "warning": Severity.P3, "warn": Severity.P3, "p3": Severity.P3, "sev3": Severity.P3,
    "low": Severity.P3, "minor": Severity.P3, "info": Severity.P3, "page": Severity.P1, "ticket": Severity.P3,
    "notice": Severity.P3,
    # PagerDuty's P1-P5 scale: P4 and P5 are its low priorities.
    "p4": Severity.P3, "p5": Severity.P3, "sev4": Severity.P3, "sev-4": Severity.P3, "sev5": Severity.P3,
    "sev-5": Severity.P3,
}  # fmt: skip
# Severity of an alert whose source gave no usable severity, by what kind of alert it is.
KIND_SEVERITY: dict[str, Severity] = {
    "availability": Severity.P1, "error": Severity.P2, "latency": Severity.P2, "saturation": Severity.P3,
    "ci_failure": Severity.P3, "metric": Severity.P3,
}  # fmt: skip
ORDER = [Severity.P0, Severity.P1, Severity.P2, Severity.P3]


@dataclass(frozen=True)
class SeverityDecision:
    severity: Severity
    reasons: tuple[str, ...]


def severity(
    hint: str | None,
    tier: int | None,
    default: Severity,
    kind: str | None = None,
    blast_radius: int = 1,
    blast_threshold: int = 0,
) -> SeverityDecision:
    """Severity from the source's hint (else the alert kind, else the default), the service tier and blast radius."""
    reasons = []
    base = SEVERITY_WORDS.get((hint or "").strip().lower())
    if base is not None:
        reasons.append(f"severity: hint {hint!r} -> {base.value}")
    elif kind in KIND_SEVERITY:
        base = KIND_SEVERITY[kind]
        reasons.append(f"severity: no usable hint ({hint!r}); kind {kind!r} -> {base.value}")
    else:
        base = default
        reasons.append(f"severity: no usable hint ({hint!r}); default {default.value}")
    idx = ORDER.index(base)
    if tier == 0 and idx > 0:
        idx -= 1
        reasons.append("severity: tier-0 service, raised one level")
    elif tier == 3 and idx < len(ORDER) - 1:
        idx += 1
        reasons.append("severity: tier-3 service, lowered one level")
    if blast_threshold and blast_radius >= blast_threshold and idx > 0:
        idx -= 1
        reasons.append(f"severity: blast radius {blast_radius} resources, raised one level")
    return SeverityDecision(ORDER[idx], tuple(reasons))

"""Triage decisions as pure functions: fingerprint, severity, dedup verdict."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pagerpatch.stacktrace import parse_trace
from schemas.events import AlertReceivedPayload, Severity

_VOLATILE = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
    (re.compile(r"(?<!\w)'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\s+"), " "),
]

SEVERITY_WORDS: dict[str, Severity] = {
    "p0": Severity.P0, "sev0": Severity.P0, "sev-0": Severity.P0, "emergency": Severity.P0, "fatal": Severity.P0,
    "p1": Severity.P1, "sev1": Severity.P1, "sev-1": Severity.P1, "critical": Severity.P1, "high": Severity.P1,
    "error": Severity.P2, "p2": Severity.P2, "sev2": Severity.P2, "sev-2": Severity.P2, "major": Severity.P2,
    "medium": Severity.P2, "warning": Severity.P3, "warn": Severity.P3, "p3": Severity.P3, "sev3": Severity.P3,
    "low": Severity.P3, "minor": Severity.P3, "info": Severity.P3,
}  # fmt: skip
ORDER = [Severity.P0, Severity.P1, Severity.P2, Severity.P3]


def normalize_title(title: str) -> str:
    """Lower-case title with ids, numbers and quoted values replaced, so recurrences look alike."""
    text = title.strip().lower()
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return text.strip()


def top_frames(stack_trace: str | None, n: int = 3) -> list[str]:
    """The innermost `n` frames as `file-basename:function` (line numbers move between deploys)."""
    if not stack_trace:
        return []
    parsed = parse_trace(stack_trace)
    if parsed is None:
        return []
    frames = parsed.frames[-n:]
    return [f"{f.file.rsplit('/', 1)[-1]}:{f.function}" for f in frames]


def fingerprint(alert: AlertReceivedPayload) -> str:
    """Stable identity of "the same problem": source, service, normalized title, top stack frames."""
    if alert.fingerprint:
        return alert.fingerprint
    parts = [alert.source, alert.service, normalize_title(alert.title), *top_frames(alert.stack_trace)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SeverityDecision:
    severity: Severity
    reasons: tuple[str, ...]


def severity(hint: str | None, tier: int | None, default: Severity) -> SeverityDecision:
    """Severity from the source's hint, raised for tier-0 services and lowered for tier-3 ones."""
    reasons = []
    base = SEVERITY_WORDS.get((hint or "").strip().lower())
    if base is None:
        base = default
        reasons.append(f"no usable severity hint ({hint!r}): default {default.value}")
    else:
        reasons.append(f"severity hint {hint!r} -> {base.value}")
    idx = ORDER.index(base)
    if tier == 0 and idx > 0:
        idx -= 1
        reasons.append("tier-0 service: raised one level")
    elif tier == 3 and idx < len(ORDER) - 1:
        idx += 1
        reasons.append("tier-3 service: lowered one level")
    return SeverityDecision(ORDER[idx], tuple(reasons))


@dataclass(frozen=True)
class LiveIncident:
    id: str
    last_seen_at: datetime
    occurrences: int


@dataclass(frozen=True)
class DedupVerdict:
    duplicate_of: str | None
    reason: str


def dedup(live: LiveIncident | None, now: datetime, window: timedelta) -> DedupVerdict:
    """Hard block: a live incident with this fingerprint seen within the window absorbs the alert."""
    if live is None:
        return DedupVerdict(None, "no live incident with this fingerprint")
    if now - live.last_seen_at <= window:
        return DedupVerdict(live.id, f"duplicate of live incident {live.id} (seen {live.occurrences}x)")
    return DedupVerdict(None, f"live incident {live.id} last seen outside the dedup window")

"""What an incident came to, and the difference between the recorded and the replayed outcome (pure).

Both sides are summarized the same way from the events the stages published (or would have): triage's class,
severity and reasons; diagnosis's suspect; fixgen's strategy, result and patch; review's risk and decision; and
what the model calls cost. The patches are compared as text: changed or not, each side's size, and a unified
diff of the two diffs.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from schemas.envelope import Event
from schemas.events import (
    AlertSuppressed,
    ApprovalRequested,
    DiagnosisReady,
    FixApproved,
    FixFailed,
    FixRejected,
    FixValidated,
    IncidentOpened,
    RiskAssessment,
)

FIELDS: tuple[str, ...] = (
    "class", "severity", "reasons", "suspect", "strategy", "fix", "patch", "risk", "risk_reasons", "decision", "cost",
)  # fmt: skip
MAX_DIFF_LINES = 400  # of the diff of diffs, in the text and the JSON (the rest is counted, not shown)


@dataclass(frozen=True)
class Summary:
    """One side of the comparison: what the stages decided for the incident (None: that stage said nothing)."""

    classification: str | None = None
    severity: str | None = None
    reasons: tuple[str, ...] = ()
    suspect: str | None = None
    strategy: str | None = None
    fix: str | None = None
    patch: str | None = None
    risk: str | None = None
    risk_reasons: tuple[str, ...] = ()
    decision: str | None = None
    cost_usd: float = 0.0

    def value(self, name: str) -> Any:
        return {"class": self.classification, "cost": round(self.cost_usd, 6)}.get(name, getattr(self, name, None))


@dataclass(frozen=True)
class PatchStats:
    files: tuple[str, ...] = ()
    added: int = 0
    removed: int = 0


@dataclass(frozen=True)
class PatchComparison:
    changed: bool
    recorded: PatchStats | None
    replayed: PatchStats | None
    diff: str = ""  # the unified diff from the recorded patch to the replayed one
    diff_lines_cut: int = 0


@dataclass(frozen=True)
class Change:
    name: str
    recorded: Any
    replayed: Any

    @property
    def changed(self) -> bool:
        return bool(self.recorded != self.replayed)


@dataclass(frozen=True)
class Comparison:
    changes: tuple[Change, ...]
    patch: PatchComparison
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> list[str]:
        return [c.name for c in self.changes if c.changed]


def _first(events: Sequence[Event[Any]], kind: type[Any]) -> Any:
    return next((e for e in events if isinstance(e, kind)), None)


def _risk(risk: RiskAssessment) -> tuple[str, tuple[str, ...]]:
    return f"{risk.level.value} (score {risk.score})", tuple(risk.reasons)


def summarize(events: Sequence[Event[Any]], cost_usd: float = 0.0) -> Summary:
    """The outcome the events tell, in the order the stages produce them (the first of each kind counts)."""
    s: dict[str, Any] = {"cost_usd": cost_usd}
    opened: IncidentOpened | None = _first(events, IncidentOpened)
    suppressed: AlertSuppressed | None = _first(events, AlertSuppressed)
    if opened is not None:
        p = opened.payload
        s.update(classification="real", severity=p.severity.value, reasons=tuple(p.reasons))
    elif suppressed is not None:
        s.update(classification=suppressed.payload.reason, reasons=tuple(suppressed.payload.reasons))
    ready: DiagnosisReady | None = _first(events, DiagnosisReady)
    if ready is not None:
        c = ready.payload.suspect_commit
        s["suspect"] = f"{c.sha[:12]} {c.subject}" if c is not None else "none"
    validated: FixValidated | None = _first(events, FixValidated)
    failed: FixFailed | None = _first(events, FixFailed)
    if validated is not None:
        v = validated.payload
        s.update(strategy=v.strategy, fix=f"validated ({v.proof})", patch=v.patch)
    elif failed is not None:
        s["fix"] = f"failed: {failed.payload.reason.splitlines()[0] if failed.payload.reason else ''}"[:300]
    asked: ApprovalRequested | None = _first(events, ApprovalRequested)
    approved: FixApproved | None = _first(events, FixApproved)
    rejected: FixRejected | None = _first(events, FixRejected)
    if asked is not None:
        s["risk"], s["risk_reasons"] = _risk(asked.payload.risk)
        s["decision"] = "waits for approval"
    elif approved is not None:
        s["risk"], s["risk_reasons"] = _risk(approved.payload.risk)
        s["decision"] = f"approved by {approved.payload.approved_by}"
    elif rejected is not None and rejected.payload.risk is not None:
        s["risk"], s["risk_reasons"] = _risk(rejected.payload.risk)
        s["decision"] = f"rejected by {rejected.payload.rejected_by}"
    return Summary(**s)


def patch_stats(patch: str) -> PatchStats:
    """Files, added and removed lines of a unified diff."""
    files: list[str] = []
    added = removed = 0
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            files.append(line.rsplit(" b/", 1)[-1])
        elif line.startswith("+++ ") or line.startswith("--- "):
            continue
        elif line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
    return PatchStats(tuple(files), added, removed)


def compare_patches(recorded: str | None, replayed: str | None) -> PatchComparison:
    """Whether the patch changed, each side's size, and the diff of the diffs (cut at MAX_DIFF_LINES)."""
    stats = (patch_stats(recorded) if recorded is not None else None, patch_stats(replayed) if replayed is not None
             else None)  # fmt: skip
    if recorded == replayed:
        return PatchComparison(False, *stats)
    lines = list(difflib.unified_diff((recorded or "").splitlines(), (replayed or "").splitlines(),
                                      "recorded.patch", "replayed.patch", lineterm=""))  # fmt: skip
    cut = max(0, len(lines) - MAX_DIFF_LINES)
    return PatchComparison(True, *stats, diff="\n".join(lines[:MAX_DIFF_LINES]), diff_lines_cut=cut)


def compare(recorded: Summary, replayed: Summary, notes: Sequence[str] = ()) -> Comparison:
    """Field by field, recorded against replayed (the patch by its own comparison)."""
    changes = tuple(
        Change(name, recorded.value(name), replayed.value(name)) if name != "patch"
        else Change(name, _patch_label(recorded.patch), _patch_label(replayed.patch))
        for name in FIELDS
    )  # fmt: skip
    patch = compare_patches(recorded.patch, replayed.patch)
    if patch.changed:  # same size, other text: the label alone would not tell
        changes = tuple(Change(c.name, c.recorded, c.replayed + " (changed)") if c.name == "patch"
                        and c.recorded == c.replayed else c for c in changes)  # fmt: skip
    return Comparison(changes, patch, tuple(notes))


def _patch_label(patch: str | None) -> str | None:
    if patch is None:
        return None
    st = patch_stats(patch)
    return f"{len(st.files)} file(s), +{st.added} -{st.removed}"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple | list):
        return "; ".join(str(v) for v in value) or "-"
    if isinstance(value, float):
        return f"${value:.4f}"
    return str(value)


def render(comparison: Comparison, *, show_diff: bool = True) -> list[str]:
    """The comparison as text: `  name  value` when both sides agree, `~ name` with both sides when not."""
    lines: list[str] = []
    for c in comparison.changes:
        if not c.changed:
            lines.append(f"  {c.name:<13}{_show(c.recorded)}")
        elif isinstance(c.recorded, tuple) or isinstance(c.replayed, tuple):
            lines += [f"~ {c.name}", f"    recorded: {_show(c.recorded)}", f"    replayed: {_show(c.replayed)}"]
        else:
            lines.append(f"~ {c.name:<13}{_show(c.recorded)} -> {_show(c.replayed)}")
    p = comparison.patch
    if show_diff and p.changed and p.diff:
        lines += ["diff of the patches (recorded -> replayed):", p.diff]
        if p.diff_lines_cut:
            lines.append(f"... {p.diff_lines_cut} more line(s)")
    changed = comparison.changed
    lines.append(f"changed: {', '.join(changed)}" if changed else "no change: the replay decided as recorded")
    return lines


def to_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as one JSON-ready document."""

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return {
        "changed": comparison.changed,
        "fields": {
            c.name: {"recorded": plain(c.recorded), "replayed": plain(c.replayed), "changed": c.changed}
            for c in comparison.changes
        },
        "patch": {
            "changed": comparison.patch.changed,
            "recorded": _stats(comparison.patch.recorded),
            "replayed": _stats(comparison.patch.replayed),
            "diff": comparison.patch.diff,
            "diff_lines_cut": comparison.patch.diff_lines_cut,
        },
        "notes": list(comparison.notes),
    }


def _stats(st: PatchStats | None) -> dict[str, Any] | None:
    return None if st is None else {**asdict(st), "files": list(st.files)}

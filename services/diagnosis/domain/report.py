"""The diagnosis a reviewer reads: a suspect (or none), the evidence along the trace, and a root cause in one paragraph.

Every file, function and commit named here was verified against the repository by the use case before it
reached these functions; they only word it and turn it into the diagnosis.ready payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pagerpatch.traces.stacktrace import Frame, ParsedTrace, is_foreign_path
from schemas.events import DiagnosisReadyPayload, Evidence, FrameVars, Severity, SuspectCommit
from services.diagnosis.domain.confidence import WITHOUT_SUSPECT, WITHOUT_TRACE
from services.diagnosis.domain.facts import BlamedFrame, Candidate, Commit, RegionChange

STRATEGY = "stacktrace-blame"
MAX_EVIDENCE = 10
MAX_TRIED = 30  # entries in diagnosis.ready's `tried`
_NOTE_MAX = 500
_TYPE_MAX = 300
_SUMMARY_TRIED = 5  # `tried` entries repeated in a root cause
_UNMAPPED_FRAMES = 10  # frames listed when none maps to the repository


@dataclass(frozen=True, slots=True)
class SuspectReport:
    """What deterministic diagnosis concluded; `to_diagnosis` turns it into the diagnosis.ready payload."""

    base_commit: str
    root_cause: str
    suspect: Commit | None
    evidence: tuple[Evidence, ...]
    confidence: float
    trace: ParsedTrace
    blamed: tuple[BlamedFrame, ...] = ()
    strategy: str = STRATEGY
    regions: tuple[RegionChange, ...] = ()
    suspect_region: RegionChange | None = None  # set when the suspect was found by region history, not blame
    candidates: tuple[Commit, ...] = ()  # the next suspects, best first
    tried: tuple[str, ...] = ()  # frames and commits set aside, and why
    reproduction: FrameVars | None = None

    def suspect_commit(self) -> SuspectCommit | None:
        return None if self.suspect is None else _suspect_commit(self.suspect)

    def to_diagnosis(self, repo: str, *, title: str = "", severity: Severity = Severity.P2) -> DiagnosisReadyPayload:
        return DiagnosisReadyPayload(
            repo=repo,
            base_commit=self.base_commit,
            root_cause=self.root_cause,
            suspect_commit=self.suspect_commit(),
            evidence=list(self.evidence),
            confidence=self.confidence,
            strategy=self.strategy,
            title=_clip(title),
            severity=severity,
            candidates=[_suspect_commit(c) for c in self.candidates],
            tried=_tried(self.tried),
            exception_type=_clip(self.trace.exception_type, _TYPE_MAX) or None,
            reproduction=self.reproduction,
        )


def without_suspect(
    base: str,
    trace: ParsedTrace,
    blamed: Sequence[BlamedFrame],
    regions: Sequence[RegionChange],
    *,
    tried: Sequence[str] = (),
    reproduction: FrameVars | None = None,
) -> SuspectReport:
    """The report when no commit is left to accuse: what was raised where, and what was set aside and why."""
    text = describe_root_cause(trace, blamed[0] if blamed else None, None)
    if tried:
        text += f" No suspect commit: everything looked at was set aside -- {_summary(tried)}."
    return SuspectReport(
        base_commit=base,
        root_cause=text,
        suspect=None,
        evidence=tuple(_evidence(b, None, ()) for b in blamed[:MAX_EVIDENCE]),
        confidence=WITHOUT_SUSPECT,
        trace=trace,
        blamed=tuple(blamed),
        regions=tuple(regions),
        tried=tuple(tried),
        reproduction=reproduction,
    )


def with_suspect(
    base: str,
    trace: ParsedTrace,
    blamed: Sequence[BlamedFrame],
    regions: Sequence[RegionChange],
    chosen: Candidate,
    suspect: Commit,
    confidence: float,
    *,
    candidates: Sequence[Commit] = (),
    tried: Sequence[str] = (),
    reproduction: FrameVars | None = None,
) -> SuspectReport:
    """The report naming `suspect`, the commit of the `chosen` candidate (`blamed` is never empty here)."""
    region = chosen if isinstance(chosen, RegionChange) else None
    suspect_frame = chosen.frame if isinstance(chosen, RegionChange) else chosen
    text = describe_root_cause(trace, blamed[0], suspect, suspect_frame=suspect_frame, region=region)
    if tried:
        text += f" Set aside before it: {_summary(tried)}."
    return SuspectReport(
        base_commit=base,
        root_cause=text,
        suspect=suspect,
        evidence=tuple(_evidence(b, suspect, regions) for b in blamed[:MAX_EVIDENCE]),
        confidence=confidence,
        trace=trace,
        blamed=tuple(blamed),
        regions=tuple(regions),
        suspect_region=region,
        candidates=tuple(candidates),
        tried=tuple(tried),
        reproduction=reproduction,
    )


def without_trace(
    repo: str, base_commit: str, title: str, severity: Severity, why: str, *, tried: Sequence[str] = ()
) -> DiagnosisReadyPayload:
    """The honest diagnosis when the stack trace cannot be used (or there is no revision to read it against):
    no suspect, no confidence, and `why` in the root cause."""
    return DiagnosisReadyPayload(
        repo=repo,
        base_commit=base_commit,
        root_cause=f"No root cause found: {why}. A human needs to look at this incident.",
        suspect_commit=None,
        evidence=[],
        confidence=WITHOUT_TRACE,
        strategy=STRATEGY,
        title=title[:500],
        severity=severity,
        tried=_tried(tried),
    )


def unmapped_frames(trace: ParsedTrace, mapped: Sequence[tuple[Frame, str]]) -> list[str]:
    """`tried` entries for the frames that map to no file of the repository, innermost first (when none did)."""
    kept = {id(frame) for frame, _ in mapped}
    out: list[str] = []
    for frame in reversed(trace.frames):
        if id(frame) in kept:
            continue
        where = f"{frame.file}:{frame.line}" if frame.line else frame.file
        where += f" in {frame.function}" if frame.function else ""
        why = "dependency or runtime code" if is_foreign_path(frame.file) else "no file of the repository matches"
        out.append(f"frame {where} (skipped: {why})")
        if len(out) == _UNMAPPED_FRAMES:
            break
    return out


def describe_root_cause(
    trace: ParsedTrace,
    innermost: BlamedFrame | None,
    suspect: Commit | None,
    *,
    suspect_frame: BlamedFrame | None = None,
    region: RegionChange | None = None,
) -> str:
    """One paragraph a reviewer can check: the exception, where it was raised, and the suspect commit."""
    exception = f"{trace.exception_type}: {trace.message}" if trace.message else trace.exception_type
    if innermost is None:
        return f"{exception}. No frame of the stack trace maps to a file of the repository, so no commit is blamed."
    text = f"{exception} raised in {_where(innermost)}."
    if suspect is None:
        return text
    subject = f'{suspect.short_sha} "{suspect.subject}" ({suspect.author}, {suspect.authored_at.date().isoformat()})'
    if region is not None:
        frame = region.frame
        if frame.depth == 0:
            return (
                f"{text} That line was last changed by {frame.blame.short_sha} {frame.blame.summary!r}, "
                f"but the most recent change to {region.region.describe()} is commit {subject}, "
                "the most likely cause (it changed the code leading to the failing line, not the line itself)."
            )
        return (
            f"{text} The most recent change on the failing call path is commit {subject}, "
            f"which changed {region.region.describe()} of {_where(frame)}."
        )
    if suspect_frame is None or suspect_frame.depth == 0:
        return f"{text} That line was last changed by commit {subject}, the most likely cause."
    return (
        f"{text} The most recent change on the failing call path is commit {subject}, "
        f"which last changed {_where(suspect_frame)}."
    )


def _where(b: BlamedFrame) -> str:
    return f"{b.function}() at {b.file}:{b.line}" if b.function else f"{b.file}:{b.line}"


def _evidence(b: BlamedFrame, suspect: Commit | None, regions: Sequence[RegionChange]) -> Evidence:
    role = "exception raised here" if b.depth == 0 else "on the call path"
    changed = f"line last changed by {b.blame.short_sha} {b.blame.summary!r} ({b.blame.author})"
    commit = b.blame.sha
    region = next((r for r in regions if r.frame == b and suspect is not None and r.commit.sha == suspect.sha), None)
    if suspect is not None and b.blame.sha == suspect.sha:
        changed += " — the suspect commit"
    elif suspect is not None and region is not None and region.commit.sha == suspect.sha:
        changed = (
            f"{suspect.short_sha} {suspect.subject!r} ({suspect.author}) changed {region.region.describe()}"
            f" — the suspect commit; {changed}"
        )
        commit = suspect.sha
    code = f"; code: {b.frame.context}" if b.frame.context else ""
    return Evidence(
        file=b.file[:1000],
        line=b.line,
        function=_clip(b.function) if b.function else None,
        commit=commit,
        note=_clip(f"{role}; {changed}{code}"),
    )


def _suspect_commit(commit: Commit) -> SuspectCommit:
    return SuspectCommit(
        sha=commit.sha,
        subject=_clip(commit.subject),
        author=_clip(f"{commit.author} <{commit.author_email}>"),
        authored_at=commit.authored_at,
    )


def _tried(entries: Sequence[str]) -> list[str]:
    """`tried` as the payload holds it: each entry clipped, the list capped with a count of what was left out."""
    clipped = [_clip(e) for e in entries]
    if len(clipped) <= MAX_TRIED:
        return clipped
    return [*clipped[: MAX_TRIED - 1], f"... and {len(clipped) - MAX_TRIED + 1} more"]


def _summary(tried: Sequence[str]) -> str:
    """The first `tried` entries, for a root cause."""
    more = f"; and {len(tried) - _SUMMARY_TRIED} more" if len(tried) > _SUMMARY_TRIED else ""
    return "; ".join(tried[:_SUMMARY_TRIED]) + more


def _clip(text: str, limit: int = _NOTE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

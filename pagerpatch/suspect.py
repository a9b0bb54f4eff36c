"""Deterministic diagnosis: from a parsed stack trace to the commit that most likely broke the code.

Every file, function and commit named in a `SuspectReport` has been verified against the workspace.

Suspect rule: blame the failing line of every repository frame at `rev`; the suspect is the most
recently committed of those commits, ties going to the innermost frame (a caller changed last week
that now passes bad data outranks a helper untouched for a year).

Confidence rule (documented so reviewers can reason about it), clamped to [0.05, 0.95]:
  0.50  a suspect was found
 +0.25  it last changed the innermost repository frame's line (the line that raised)
 +0.10  it is recent: fewer than RECENT_COMMITS commits landed after it on `rev`
 +0.05  it also last changed another failing line of the trace
 -0.30  it is a root commit (every old line blames to the initial import: a weak signal)
No repository frame, or none that could be blamed: 0.10, and no suspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pagerpatch import workspace
from pagerpatch.stacktrace import Frame, ParsedTrace, map_frames_to_repo
from pagerpatch.workspace import BlameInfo, CommitInfo, GitError
from schemas.events import DiagnosisReadyPayload, Evidence, Severity, SuspectCommit

STRATEGY = "stacktrace-blame"
RECENT_COMMITS = 20
MAX_EVIDENCE = 10
MAX_BLAMED_FRAMES = 25  # distinct locations, innermost first: deep recursion must not mean a thousand blames
_NOTE_MAX = 500


@dataclass(frozen=True, slots=True)
class BlamedFrame:
    """A repository frame, the file it maps to, and the commit that last changed its failing line."""

    frame: Frame
    file: str
    line: int
    depth: int  # 0 = innermost repository frame
    function: str | None  # only when verified to be defined in `file`
    blame: BlameInfo


@dataclass(frozen=True, slots=True)
class SuspectReport:
    """What deterministic diagnosis concluded; `to_diagnosis` turns it into the diagnosis.ready payload."""

    base_commit: str
    root_cause: str
    suspect: CommitInfo | None
    evidence: tuple[Evidence, ...]
    confidence: float
    trace: ParsedTrace
    blamed: tuple[BlamedFrame, ...] = ()
    strategy: str = STRATEGY

    def suspect_commit(self) -> SuspectCommit | None:
        if self.suspect is None:
            return None
        return SuspectCommit(
            sha=self.suspect.sha,
            subject=_clip(self.suspect.subject),
            author=_clip(f"{self.suspect.author} <{self.suspect.author_email}>"),
            authored_at=self.suspect.authored_at,
        )

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
        )


def find_suspect(workspace_path: Path, trace: ParsedTrace, rev: str = "HEAD") -> SuspectReport:
    """Blame the trace's repository frames at `rev` and name the commit most likely at fault."""
    base = workspace.resolve(workspace_path, rev)
    files = workspace.list_files(workspace_path, base)
    blamed = _blame_frames(workspace_path, base, map_frames_to_repo(trace.frames, files))
    chosen = choose_suspect(blamed)
    if chosen is None:
        return SuspectReport(
            base_commit=base,
            root_cause=describe_root_cause(trace, blamed[0] if blamed else None, None),
            suspect=None,
            evidence=tuple(_evidence(b, None) for b in blamed[:MAX_EVIDENCE]),
            confidence=0.1,
            trace=trace,
            blamed=tuple(blamed),
        )
    suspect = workspace.commit_info(workspace_path, chosen.blame.sha)
    confidence = score_confidence(
        blamed,
        suspect,
        commits_after=workspace.commits_since(workspace_path, suspect.sha, base),
    )
    return SuspectReport(
        base_commit=base,
        root_cause=describe_root_cause(trace, blamed[0], suspect, suspect_frame=chosen),
        suspect=suspect,
        evidence=tuple(_evidence(b, suspect) for b in blamed[:MAX_EVIDENCE]),
        confidence=confidence,
        trace=trace,
        blamed=tuple(blamed),
    )


def _blame_frames(path: Path, base: str, mapped: list[tuple[Frame, str]]) -> list[BlamedFrame]:
    """Blame repository frames innermost first; repeated locations and lines gone at `base` are dropped."""
    out: list[BlamedFrame] = []
    seen: set[tuple[str, int]] = set()
    for frame, rel in reversed(mapped):
        if frame.line is None or frame.line < 1 or (rel, frame.line) in seen:
            continue
        if len(out) >= MAX_BLAMED_FRAMES:
            break
        seen.add((rel, frame.line))
        try:
            blame = workspace.blame_line(path, rel, frame.line, base)
        except GitError:
            continue  # the line does not exist at this revision: the trace is from other code
        if not workspace.commit_exists(path, blame.sha):
            continue
        function = frame.function
        if function and not workspace.function_exists(path, rel, function, base):
            function = None
        out.append(BlamedFrame(frame, rel, frame.line, len(out), function, blame))
    return out


def choose_suspect(blamed: list[BlamedFrame]) -> BlamedFrame | None:
    """The frame whose blamed commit is the most recently committed; ties go to the innermost frame."""
    if not blamed:
        return None
    return min(blamed, key=lambda b: (-b.blame.committed_at.timestamp(), b.depth))


def score_confidence(blamed: list[BlamedFrame], suspect: CommitInfo, *, commits_after: int) -> float:
    """Confidence in `suspect` by the rule in this module's docstring."""
    score = 0.5
    touched = [b for b in blamed if b.blame.sha == suspect.sha]
    if blamed and blamed[0].blame.sha == suspect.sha:
        score += 0.25
    if commits_after < RECENT_COMMITS:
        score += 0.10
    if len(touched) > 1:
        score += 0.05
    if not suspect.parents:
        score -= 0.30
    return round(min(0.95, max(0.05, score)), 2)


def describe_root_cause(
    trace: ParsedTrace,
    innermost: BlamedFrame | None,
    suspect: CommitInfo | None,
    *,
    suspect_frame: BlamedFrame | None = None,
) -> str:
    """One paragraph a reviewer can check: the exception, where it was raised, and the suspect commit."""
    exception = f"{trace.exception_type}: {trace.message}" if trace.message else trace.exception_type
    if innermost is None:
        return f"{exception}. No frame of the stack trace maps to a file of the repository, so no commit is blamed."
    text = f"{exception} raised in {_where(innermost)}."
    if suspect is None:
        return text
    subject = f'{suspect.short_sha} "{suspect.subject}" ({suspect.author}, {suspect.authored_at.date().isoformat()})'
    if suspect_frame is None or suspect_frame.depth == 0:
        return f"{text} That line was last changed by commit {subject}, the most likely cause."
    return (
        f"{text} The most recent change on the failing call path is commit {subject}, "
        f"which last changed {_where(suspect_frame)}."
    )


def _where(b: BlamedFrame) -> str:
    return f"{b.function}() at {b.file}:{b.line}" if b.function else f"{b.file}:{b.line}"


def _evidence(b: BlamedFrame, suspect: CommitInfo | None) -> Evidence:
    role = "exception raised here" if b.depth == 0 else "on the call path"
    changed = f"line last changed by {b.blame.short_sha} {b.blame.summary!r} ({b.blame.author})"
    if suspect is not None and b.blame.sha == suspect.sha:
        changed += " — the suspect commit"
    code = f"; code: {b.frame.context}" if b.frame.context else ""
    return Evidence(
        file=b.file[:1000],
        line=b.line,
        function=_clip(b.function) if b.function else None,
        commit=b.blame.sha,
        note=_clip(f"{role}; {changed}{code}"),
    )


def _clip(text: str, limit: int = _NOTE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

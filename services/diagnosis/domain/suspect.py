"""Deterministic diagnosis: from a parsed stack trace to the commit that most likely broke the code.

Every file, function and commit named in a `SuspectReport` has been verified against the workspace.

Suspect rule. Two kinds of candidate commits, all read at `rev`:
  * blame: the commit that last changed the failing line of every repository frame (`git blame`);
  * region history: for the innermost REGION_FRAMES repository frames, the newest commit that touched the
    code enclosing the failing line (`git log -L start,end:file`), from the enclosing definition down to
    the failing line. A commit that deleted a guard above the failing line (`if not values: return 0.0`)
    leaves the failing line blamed on an old commit; only the region's history shows it.
The enclosing definition of a Python line is the nearest less-indented `def`/`async def`/`class` above it
(decorators included); other languages use the nearest less-indented function-looking line within
WINDOW_ABOVE lines; failing that, a window of WINDOW_ABOVE lines above to WINDOW_BELOW below.
The suspect is the newest candidate: a candidate that descends from the others in the history wins,
otherwise the latest commit date, ties going to the innermost frame (a caller changed last week that now
passes bad data outranks a helper untouched for a year) and to blame over region history.

Confidence rule (documented so reviewers can reason about it), clamped to [0.05, 0.95]:
  0.50  a suspect was found
 +0.25  it last changed the innermost repository frame's line (the line that raised), or else
 +0.15  it changed the code enclosing that line, but not the line itself
 +0.10  it is recent: fewer than RECENT_COMMITS commits landed after it on `rev`
 +0.05  it also last changed another failing line of the trace
 -0.30  it is a root commit (every old line blames to the initial import: a weak signal)
No repository frame, or none that could be blamed: 0.10, and no suspect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pagerpatch.git import workspace
from pagerpatch.git.workspace import BlameInfo, CommitInfo, GitError
from pagerpatch.traces.stacktrace import Frame, ParsedTrace, map_frames_to_repo
from schemas.events import DiagnosisReadyPayload, Evidence, Severity, SuspectCommit

STRATEGY = "stacktrace-blame"
RECENT_COMMITS = 20
MAX_EVIDENCE = 10
MAX_BLAMED_FRAMES = 25  # distinct locations, innermost first: deep recursion must not mean a thousand blames
REGION_FRAMES = 2  # innermost repository frames whose enclosing code's history is read
MAX_FUNCTION_LINES = 200  # how far above the failing line a Python `def` is looked for
WINDOW_ABOVE = 15  # without an enclosing definition: this many lines above the failing line...
WINDOW_BELOW = 3  # ...to this many below it
_NOTE_MAX = 500
_PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")

RegionKind = Literal["function", "class", "window"]

_PY_DEFINITION = re.compile(r"^[ \t]*(?:(?:async[ \t]+)?def|(?P<cls>class))[ \t]+(?P<name>[^\W\d]\w*)")
_CONTROL_WORDS = (
    "if|else|elif|elsif|unless|for|foreach|while|until|do|switch|case|catch|try|finally|with|return|throw|"
    "synchronized|using|lock|when|match|loop|unsafe|defer|go|select|new|await|yield"
)
# A line that starts a function in a braced or keyword language: `function f(`, `func (c *Cart) Total(`,
# `fn`, `fun`, `def`, `sub`, an arrow function, or a signature `name(args) ... {` (not `if (...) {`).
_OTHER_DEFINITION = re.compile(
    rf"^(?![ \t]*(?:[}})\]]|(?:{_CONTROL_WORDS})\b))[ \t]*(?:"
    r"(?:[\w$@<>\[\],.?*&:]+[ \t]+)*(?:function|func|fn|fun|def|sub)\b"
    r"|.*=>[ \t]*\{?[ \t]*$"
    r"|[^=;]*[\w$>\]][ \t]*\([^;]*\)[^;=]*\{[ \t]*$"
    r")"
)
_OTHER_SIGNATURE = re.compile(
    rf"^(?![ \t]*(?:[}})\]]|(?:{_CONTROL_WORDS})\b))[ \t]*[^=;]*[\w$>\]][ \t]*\([^;]*\)[^;={{]*$"
)
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")


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
class Region:
    """Lines `start`..`end` (1-based, inclusive) around a failing line: its enclosing definition, or a window."""

    start: int
    end: int
    kind: RegionKind
    name: str | None = None  # the enclosing definition's name, when known

    def describe(self) -> str:
        span = f"lines {self.start}–{self.end}"
        if self.kind == "window":
            return f"the code around it ({span})"
        if self.name:
            return f"the enclosing {self.kind} `{self.name}` ({span})"
        return f"the enclosing {self.kind} ({span})"


@dataclass(frozen=True, slots=True)
class RegionChange:
    """The newest commit that touched the region around a blamed frame's failing line (`git log -L`)."""

    frame: BlamedFrame
    region: Region  # a `name` here has been verified to be defined in the frame's file
    commit: CommitInfo


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
    regions: tuple[RegionChange, ...] = ()
    suspect_region: RegionChange | None = None  # set when the suspect was found by region history, not blame

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
    """Blame the trace's repository frames at `rev`, read their enclosing code's history, name the likely commit."""
    base = workspace.resolve(workspace_path, rev)
    files = workspace.list_files(workspace_path, base)
    blamed = _blame_frames(workspace_path, base, map_frames_to_repo(trace.frames, files))
    regions = _region_changes(workspace_path, base, blamed[:REGION_FRAMES], python=trace.language == "python")
    chosen = choose_suspect(blamed, regions, descends=lambda a, b: _descends(workspace_path, a, b))
    if chosen is None:
        return SuspectReport(
            base_commit=base,
            root_cause=describe_root_cause(trace, blamed[0] if blamed else None, None),
            suspect=None,
            evidence=tuple(_evidence(b, None, ()) for b in blamed[:MAX_EVIDENCE]),
            confidence=0.1,
            trace=trace,
            blamed=tuple(blamed),
            regions=tuple(regions),
        )
    if isinstance(chosen, RegionChange):
        region, suspect_frame, suspect = chosen, chosen.frame, chosen.commit
    else:
        region, suspect_frame = None, chosen
        suspect = workspace.commit_info(workspace_path, chosen.blame.sha)
    confidence = score_confidence(
        blamed,
        suspect,
        commits_after=workspace.commits_since(workspace_path, suspect.sha, base),
        regions=regions,
    )
    return SuspectReport(
        base_commit=base,
        root_cause=describe_root_cause(trace, blamed[0], suspect, suspect_frame=suspect_frame, region=region),
        suspect=suspect,
        evidence=tuple(_evidence(b, suspect, regions) for b in blamed[:MAX_EVIDENCE]),
        confidence=confidence,
        trace=trace,
        blamed=tuple(blamed),
        regions=tuple(regions),
        suspect_region=region,
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


def _region_changes(path: Path, base: str, frames: Sequence[BlamedFrame], *, python: bool) -> list[RegionChange]:
    """For each frame, the newest commit that touched the code enclosing its failing line (`git log -L`)."""
    out: list[RegionChange] = []
    texts: dict[str, list[str] | None] = {}
    for b in frames:
        if b.file not in texts:
            try:
                text = workspace.read_file(path, b.file, base)
            except GitError:
                texts[b.file] = None
            else:
                # git numbers lines by "\n" only (str.splitlines would also split on \f, \x1c, ...)
                lines = text.split("\n")
                texts[b.file] = lines[:-1] if lines and lines[-1] == "" else lines
        lines_or_none = texts[b.file]
        if lines_or_none is None or b.line > len(lines_or_none):
            continue
        region = enclosing_region(
            lines_or_none, b.line, python=python or b.file.endswith(_PYTHON_SUFFIXES), function=b.function
        )
        if region.name and not workspace.function_exists(path, b.file, region.name, base):
            region = replace(region, name=None)
        try:
            history = workspace.log_range_history(path, b.file, region.start, region.end, base, max_count=1)
        except GitError:
            continue
        if history and workspace.commit_exists(path, history[0].sha):
            out.append(RegionChange(b, region, history[0]))
    return out


def enclosing_region(lines: Sequence[str], line: int, *, python: bool, function: str | None = None) -> Region:
    """The code around `line` (1-based) of a file's `lines` whose history can explain a failure on that line.

    From the enclosing definition (decorators included) down to `line`; without one, a window of
    WINDOW_ABOVE lines above to WINDOW_BELOW below that stays out of sibling definitions. Python's
    enclosing `def` is found by indentation; other languages' by a function-looking, less-indented line,
    named after `function` (the frame's function) when that name appears on it.
    """
    if not 1 <= line <= len(lines):
        raise ValueError(f"line {line} is outside a file of {len(lines)} lines")
    idx = line - 1
    found = _enclosing_definition(lines, idx, python=python)
    if found is None:
        return _window(lines, idx, python=python)
    start, kind, name = found
    if python:
        indent = _indent(lines[start])
        while start > 0 and lines[start - 1].lstrip().startswith("@") and _indent(lines[start - 1]) == indent:
            start -= 1
    elif function:
        words = set(_IDENTIFIER.findall(lines[start]))
        name = next((w for w in reversed(_IDENTIFIER.findall(function)) if w in words), None)
    return Region(start + 1, line, kind, name)


def _enclosing_definition(lines: Sequence[str], idx: int, *, python: bool) -> tuple[int, RegionKind, str | None] | None:
    """Index, kind and (Python) name of the definition enclosing `lines[idx]`, scanning up by indentation."""
    own = _definition(lines[idx], python=python)
    if own is not None:  # the failing line is itself a definition (a default argument, a decorator call)
        return idx, *own
    threshold = _indent(lines[idx])
    limit = MAX_FUNCTION_LINES if python else WINDOW_ABOVE
    for i in range(idx - 1, max(-1, idx - 1 - limit), -1):
        if threshold == 0:
            break
        text = lines[i]
        if _is_blank_or_comment(text, python=python):
            continue
        indent = _indent(text)
        if indent >= threshold:
            continue
        definition = _definition(text, python=python)
        if definition is not None:
            return i, *definition
        if not python and text.strip() == "{":  # Allman braces: the signature is on the line above
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0 and _indent(lines[j]) == indent and _OTHER_SIGNATURE.match(lines[j]):
                return j, "function", None
        threshold = indent  # an enclosing block (if, for, with...): its definition is further out still
    return None


def _window(lines: Sequence[str], idx: int, *, python: bool) -> Region:
    """WINDOW_ABOVE lines above `lines[idx]` to WINDOW_BELOW below, stopping short of sibling definitions."""
    threshold = _indent(lines[idx])
    start = idx
    for i in range(idx - 1, max(-1, idx - 1 - WINDOW_ABOVE), -1):
        text = lines[i]
        if text.strip() and _indent(text) <= threshold and _definition(text, python=python) is not None:
            # a sibling definition: its body is other code, so the window starts after it
            indent, start = _indent(text), i + 1
            while start < idx and (not lines[start].strip() or _indent(lines[start]) > indent):
                start += 1
            break
        start = i
    end = idx
    for k in range(idx + 1, min(len(lines), idx + 1 + WINDOW_BELOW)):
        text = lines[k]
        if text.strip() and (_indent(text) < threshold or _definition(text, python=python) is not None):
            break
        end = k
    while start < idx and not lines[start].strip():
        start += 1
    while end > idx and not lines[end].strip():
        end -= 1
    return Region(start + 1, end + 1, "window")


def _definition(text: str, *, python: bool) -> tuple[RegionKind, str | None] | None:
    if python:
        match = _PY_DEFINITION.match(text)
        if match is None:
            return None
        return ("class" if match["cls"] else "function"), match["name"]
    return ("function", None) if _OTHER_DEFINITION.match(text) else None


def _is_blank_or_comment(text: str, *, python: bool) -> bool:
    stripped = text.strip()
    if not stripped:
        return True
    return stripped.startswith("#") if python else stripped.startswith(("//", "/*", "*", "#", "--"))


def _indent(text: str) -> int:
    expanded = text.expandtabs(8)
    return len(expanded) - len(expanded.lstrip(" \t"))


def _descends(path: Path, sha: str, other: str) -> bool:
    """True when commit `sha` is a descendant of commit `other` (every commit of `other` is in `sha`)."""
    if sha == other:
        return False
    try:
        return workspace.commits_since(path, sha, other) == 0
    except GitError:
        return False


def _candidate_sha(c: BlamedFrame | RegionChange) -> str:
    return c.commit.sha if isinstance(c, RegionChange) else c.blame.sha


def _candidate_rank(c: BlamedFrame | RegionChange) -> tuple[float, int, int]:
    if isinstance(c, RegionChange):
        return (-c.commit.committed_at.timestamp(), c.frame.depth, 1)
    return (-c.blame.committed_at.timestamp(), c.depth, 0)


def choose_suspect(
    blamed: Sequence[BlamedFrame],
    regions: Sequence[RegionChange] = (),
    *,
    descends: Callable[[str, str], bool] | None = None,
) -> BlamedFrame | RegionChange | None:
    """The newest candidate commit among blamed lines and region histories, by the rule in the module docstring.

    `descends(a, b)` says whether commit a descends from commit b; without it only commit dates count.
    A commit that some frame's blame also names is returned as that (innermost) blamed frame: it changed
    a failing line itself, which is the stronger evidence.
    """
    candidates: list[BlamedFrame | RegionChange] = [*blamed, *regions]
    ranked = sorted(candidates, key=_candidate_rank)
    if not ranked:
        return None
    best = ranked[0]
    if descends is not None:  # committer dates lie after rebases and on skewed clocks; ancestry does not
        seen = {_candidate_sha(best)}
        for other in ranked[1:]:
            sha = _candidate_sha(other)
            if sha not in seen:
                seen.add(sha)
                if descends(sha, _candidate_sha(best)):
                    best = other
    sha = _candidate_sha(best)
    return next((b for b in blamed if b.blame.sha == sha), best)


def score_confidence(
    blamed: Sequence[BlamedFrame],
    suspect: CommitInfo,
    *,
    commits_after: int,
    regions: Sequence[RegionChange] = (),
) -> float:
    """Confidence in `suspect` by the rule in this module's docstring."""
    score = 0.5
    touched = [b for b in blamed if b.blame.sha == suspect.sha]
    if blamed and blamed[0].blame.sha == suspect.sha:
        score += 0.25
    elif blamed and any(r.frame.depth == 0 and r.commit.sha == suspect.sha for r in regions):
        score += 0.15
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


def _evidence(b: BlamedFrame, suspect: CommitInfo | None, regions: Sequence[RegionChange]) -> Evidence:
    role = "exception raised here" if b.depth == 0 else "on the call path"
    changed = f"line last changed by {b.blame.short_sha} {b.blame.summary!r} ({b.blame.author})"
    commit = b.blame.sha
    region = next((r for r in regions if r.frame == b), None)
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


def _clip(text: str, limit: int = _NOTE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

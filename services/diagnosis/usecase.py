"""Diagnosis's use case: check the incident's repository out at the alert's commit, follow the stack trace through
its history, and name the commit that most likely broke it. Runs on git in the service, on memory ports in tests.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from pagerpatch.settings import RepoConfig
from pagerpatch.traces import symbols
from pagerpatch.traces.stacktrace import Frame, ParsedTrace, map_frames_to_repo, parse_trace
from schemas.events import DiagnosisReadyPayload, FrameVars, IncidentOpenedPayload
from services.diagnosis.domain import outcome, report, vetting
from services.diagnosis.domain.confidence import score_confidence
from services.diagnosis.domain.cosmetic import cosmetic_change
from services.diagnosis.domain.facts import Blame, BlamedFrame, Candidate, Commit, RegionChange, candidate_sha
from services.diagnosis.domain.region import enclosing_region, git_lines, is_python_source
from services.diagnosis.domain.report import SuspectReport
from services.diagnosis.domain.reproduction import reproduction_for
from services.diagnosis.domain.suspect import (
    MAX_BLAMED_FRAMES,
    MAX_CANDIDATES,
    REGION_FRAMES,
    REGION_HISTORY,
    frames_to_blame,
    ranked_candidates,
)
from services.diagnosis.ports import Audit, Checkouts, GitError, GitGuard, History, Investigator, RepoLookup

log = logging.getLogger(__name__)
T = TypeVar("T")
LOOK_THROUGH = 3  # times a frame's line is blamed again past a commit set aside
NO_COMMIT = "0" * 40  # the base of a diagnosis with no revision to read (a repository without commits)


async def unguarded(repo: str, work: Callable[[], Awaitable[T]]) -> T:
    """A guard that only runs the work (tests, evals): no breaker between diagnosis and git."""
    return await work()


@dataclass(frozen=True)
class Diagnosis:
    """The ports diagnosis works over (what the service's handler gets as its deps)."""

    repos: RepoLookup
    checkouts: Checkouts
    audit: Audit
    investigator: Investigator | None = None  # the investigation agent; None or disabled: no model configured

    async def diagnose(
        self,
        incident_id: uuid.UUID,
        incident: IncidentOpenedPayload,
        guard: GitGuard = unguarded,
        team: str | None = None,
        at: datetime | None = None,
    ) -> DiagnosisReadyPayload | None:
        """The incident's diagnosis; None when there is no repository to diagnose (the skip is audited).

        The deterministic diagnosis runs first, on git, through the guard; then, with a model configured, the
        investigation runs on the same worktree (outside the guard: it holds no git slot while the model thinks)
        and its grounded report stands unless it failed -- the deterministic one stands then, with the reason.
        `at` (the incident's time) is "now" for the observability tools the investigation calls."""
        if incident.repo is None:
            log.warning("incident %s: service %r has no repository in config; nothing to diagnose", incident_id,
                        incident.service)  # fmt: skip
            reason = f"no repository registered for service {incident.service!r}"
            await self.audit.skipped(incident_id, reason)
            return None
        repo = await self.repos.require(incident.repo)
        cleanup = ExitStack()
        try:

            async def work() -> tuple[DiagnosisReadyPayload, History | None]:
                # git runs as blocking subprocesses: checkout and blame run in one worker thread
                return await asyncio.to_thread(checkout_and_diagnose, self.checkouts, repo, str(incident_id),
                                               incident, cleanup)  # fmt: skip

            payload, history = await guard(repo.name, work)
            if self.investigator is None or not self.investigator.enabled:
                return outcome.with_fallback(payload, outcome.NO_MODEL)
            if history is None:
                return outcome.with_fallback(payload, "no revision of the repository to investigate")
            found = await self.investigator.investigate(str(incident_id), incident, payload, history, team, at)
            return outcome.decide(payload, found)
        finally:
            await asyncio.to_thread(cleanup.close)


def checkout_and_diagnose(
    checkouts: Checkouts, repo: RepoConfig, incident_id: str, incident: IncidentOpenedPayload, cleanup: ExitStack
) -> tuple[DiagnosisReadyPayload, History | None]:
    """Check `repo` out at the alert's commit (or the default branch) and find the suspect commit (blocking); the
    worktree stays open in `cleanup` (the caller closes it) and is returned with the diagnosis (None: none).

    A commit or branch the repository does not have is an answer, not a failure to retry: a missing alert
    commit falls back to the default branch, and a missing default branch ends in a diagnosis that says so.
    Other git failures (a lock race, a fetch that timed out) are raised for the guard.
    """
    checkouts.refresh(repo)
    branch = repo.default_branch
    tried: list[str] = []
    history: History | None = None
    if incident.commit and incident.commit != branch:
        try:
            history = cleanup.enter_context(checkouts.worktree(repo, incident_id, incident.commit))
        except GitError as exc:
            if not exc.missing_ref:
                raise
            log.warning("commit %s from the alert is not in %s; using %s", incident.commit, repo.name, branch)
            tried.append(f"commit {incident.commit} from the alert (skipped: not in {repo.name})")
    if history is None:
        try:
            history = cleanup.enter_context(checkouts.worktree(repo, incident_id, branch))
        except GitError as exc:
            if not exc.missing_ref:
                raise
            return _without_branch(checkouts, repo, incident, tried), None
    base = history.resolve("HEAD")
    if not incident.stack_trace:
        why = "the alert carries no stack trace"
        return report.without_trace(repo.name, base, incident.title, incident.severity, why, tried=tried), history
    trace = parse_trace(incident.stack_trace)
    if trace is None:
        why = "the stack trace could not be parsed"
        return report.without_trace(repo.name, base, incident.title, incident.severity, why, tried=tried), history
    found = find_suspect(history, trace, base, frame_vars=incident.frame_vars)
    if tried:
        found = replace(found, tried=(*tried, *found.tried))
    return found.to_diagnosis(repo.name, title=incident.title, severity=incident.severity), history


def _without_branch(
    checkouts: Checkouts, repo: RepoConfig, incident: IncidentOpenedPayload, tried: Sequence[str]
) -> DiagnosisReadyPayload:
    """The terminal diagnosis when the configured default branch does not exist: say so, and what to set."""
    why = f"default branch {repo.default_branch!r} does not exist in {repo.name}; set default_branch"
    head = checkouts.head(repo)
    if head is not None and head[0]:
        why += f" (the repository's HEAD is {head[0]!r})"
    log.warning("diagnosis of %s cannot run: %s", repo.name, why)
    base = head[1] if head is not None else NO_COMMIT
    return report.without_trace(repo.name, base, incident.title, incident.severity, why, tried=[*tried, why])


def find_suspect(
    history: History, trace: ParsedTrace, rev: str = "HEAD", *, frame_vars: Sequence[FrameVars] = ()
) -> SuspectReport:
    """Blame the trace's repository frames at `rev`, read their enclosing code's history, name the likely commit.

    Candidates are walked best first and set aside when cosmetic or test-only (`domain.vetting`); the first left
    is the suspect, the next ones its fallbacks. Everything the report names is verified here: files in the
    tree, functions defined in their files, commits present in the repository.
    """
    base = history.resolve(rev)
    sources = _Sources(history, base)
    mapped = map_frames_to_repo(trace.frames, history.files(base))
    vet = _Vetting(history, vetting.parse_ignore_revs(sources.text(vetting.IGNORE_REVS_FILE)))
    blamed = _blame_frames(history, sources, base, mapped, vet)
    regions = _region_changes(history, sources, base, blamed[:REGION_FRAMES], python=trace.language == "python")
    reproduction = reproduction_for(frame_vars, mapped)
    accepted = _walk_candidates(history, vet, blamed, regions)
    kept = {candidate_sha(c) for c in accepted}
    tried = [*(report.unmapped_frames(trace, mapped) if not mapped else []), *vet.tried(kept)]
    if not accepted:
        return report.without_suspect(base, trace, blamed, regions, tried=tried, reproduction=reproduction)
    chosen, *rest = accepted
    suspect = vet.commit(candidate_sha(chosen))
    confidence = score_confidence(
        blamed, suspect, commits_after=history.commits_between(suspect.sha, base), regions=regions
    )
    candidates = [vet.commit(candidate_sha(c)) for c in rest]
    return report.with_suspect(
        base, trace, blamed, regions, chosen, suspect, confidence,
        candidates=candidates, tried=tried, reproduction=reproduction,
    )  # fmt: skip


class _Sources:
    """The files of one revision, read once each: their lines, and which functions they define."""

    def __init__(self, history: History, rev: str) -> None:
        self.history = history
        self.rev = rev
        self._texts: dict[str, str | None] = {}

    def text(self, file: str) -> str | None:
        if file not in self._texts:
            self._texts[file] = self.history.read(file, self.rev)
        return self._texts[file]

    def lines(self, file: str) -> list[str] | None:
        text = self.text(file)
        return None if text is None else git_lines(text)

    def defines(self, file: str, function: str) -> bool:
        text = self.text(file)
        return text is not None and symbols.defines(text, file, function)


class _Vetting:
    """Judges candidate commits once per (commit, file, function) and remembers, in order, what it set aside."""

    def __init__(self, history: History, ignored: frozenset[str]) -> None:
        self.history = history
        self.ignored = ignored  # the repository's .git-blame-ignore-revs
        self._commits: dict[str, Commit] = {}
        self._changed: dict[str, set[str]] = {}
        self._verdicts: dict[tuple[str, str, str | None], str | None] = {}
        self._entries: dict[str, str] = {}  # commit sha or frame location -> its `tried` entry

    def commit(self, sha: str) -> Commit:
        if sha not in self._commits:
            self._commits[sha] = self.history.commit(sha)
        return self._commits[sha]

    def why_not(self, sha: str, file: str, function: str | None) -> str | None:
        """Why commit `sha` is set aside as the cause of a failure in `function` of `file`; None when it is not."""
        key = (sha, file, function)
        if key not in self._verdicts:
            self._verdicts[key] = self._judge(sha, file, function)
        why = self._verdicts[key]
        if why is not None:
            self._entries.setdefault(sha, vetting.set_aside(self.commit(sha), why))
        return why

    def frame_skipped(self, b: tuple[Frame, str, int], why: str) -> None:
        frame, file, line = b
        where = f"{file}:{line}" + (f" in {frame.function}" if frame.function else "")
        self._entries.setdefault(where, f"frame {where} (skipped: {why})")

    def tried(self, kept: set[str]) -> list[str]:
        """What was set aside, in the order it was looked at (a commit kept for another region is not listed)."""
        return [entry for key, entry in self._entries.items() if key not in kept]

    def _judge(self, sha: str, file: str, function: str | None) -> str | None:
        if sha in self.ignored:
            return vetting.IGNORED
        if sha not in self._changed:
            self._changed[sha] = self.history.changed_files(sha)
        only_tests = vetting.only_tests(self._changed[sha])
        if only_tests is not None:
            return only_tests
        commit = self.commit(sha)
        before = self.history.read(file, commit.parents[0]) if commit.parents else None
        return cosmetic_change(before, self.history.read(file, sha), file=file, function=function)


def _blame_frames(
    history: History, sources: _Sources, base: str, mapped: Sequence[tuple[Frame, str]], vet: _Vetting
) -> list[BlamedFrame]:
    """Blame repository frames innermost first, past commits set aside; lines gone at `base` and commits the clone
    lacks are dropped (and listed in `tried`)."""
    out: list[BlamedFrame] = []
    for located in frames_to_blame(mapped):
        if len(out) >= MAX_BLAMED_FRAMES:
            break
        frame, file, line = located
        blame = history.blame(file, line, base, vet.ignored)
        if blame is None:  # the line does not exist at this revision: the trace is from other code
            vet.frame_skipped(located, f"no line {line} in {file} at {base[:7]}")
            continue
        if not history.has_commit(blame.sha):
            vet.frame_skipped(located, f"its line is blamed on {blame.short_sha}, which the clone does not have")
            continue
        function = frame.function
        if function and not sources.defines(file, function):
            function = None
        blame = _look_through(history, vet, base, located, function, blame)
        out.append(BlamedFrame(frame, file, line, len(out), function, blame))
    return out


def _look_through(
    history: History, vet: _Vetting, base: str, located: tuple[Frame, str, int], function: str | None, blame: Blame
) -> Blame:
    """The frame's line blamed again past commits set aside (a reformatting of the line hides who wrote its logic);
    the last blame when git can look no further."""
    _, file, line = located
    passed: set[str] = set()
    for _ in range(LOOK_THROUGH):
        if vet.why_not(blame.sha, blame.original_file or file, function) is None:
            break
        passed.add(blame.sha)
        again = history.blame(file, line, base, vet.ignored | passed)
        if again is None or again.sha in passed or not history.has_commit(again.sha):
            break
        blame = again
    return blame


def _region_changes(
    history: History, sources: _Sources, base: str, frames: Sequence[BlamedFrame], *, python: bool
) -> list[RegionChange]:
    """For each frame, the commits that touched the code enclosing its failing line, newest first."""
    out: list[RegionChange] = []
    for b in frames:
        lines = sources.lines(b.file)
        if lines is None or b.line > len(lines):
            continue
        region = enclosing_region(lines, b.line, python=python or is_python_source(b.file), function=b.function)
        if region.name and not sources.defines(b.file, region.name):
            region = replace(region, name=None)
        for commit in history.region_history(b.file, region.start, region.end, base, REGION_HISTORY):
            if history.has_commit(commit.sha):
                out.append(RegionChange(b, region, commit))
    return out


def _walk_candidates(
    history: History, vet: _Vetting, blamed: Sequence[BlamedFrame], regions: Sequence[RegionChange]
) -> list[Candidate]:
    """The suspect and its next candidates, best first: the ranking with the commits set aside left out.

    A commit is kept when its change is real in any of the regions it is a candidate for.
    """
    known: dict[tuple[str, str], bool] = {}

    def descends(sha: str, ancestor: str) -> bool:  # asked again for the same pair as the ranking proceeds
        if (sha, ancestor) not in known:
            known[(sha, ancestor)] = history.descends(sha, ancestor)
        return known[(sha, ancestor)]

    accepted: list[Candidate] = []
    for candidate in ranked_candidates(blamed, regions, descends=descends):
        sha = candidate_sha(candidate)
        scopes = dict.fromkeys(_scope(c) for c in (candidate, *blamed, *regions) if candidate_sha(c) == sha)
        if any(vet.why_not(sha, file, function) is None for file, function in scopes):
            accepted.append(candidate)
            if len(accepted) > MAX_CANDIDATES:
                break
    return accepted


def _scope(c: Candidate) -> tuple[str, str | None]:
    """The file and function (None: the whole file) whose change by the candidate's commit is judged."""
    if isinstance(c, RegionChange):
        return c.frame.file, c.region.name
    return c.blame.original_file or c.file, c.function

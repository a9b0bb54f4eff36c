"""Diagnosis's pure rules, table-driven: which candidate is the suspect, how sure we are, and what is reported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pagerpatch.traces.stacktrace import Frame, ParsedTrace
from schemas.events import FrameVars, Severity
from services.diagnosis.domain import report
from services.diagnosis.domain.confidence import RECENT_COMMITS, score_confidence
from services.diagnosis.domain.facts import Blame, BlamedFrame, Commit, RegionChange
from services.diagnosis.domain.region import Region, git_lines
from services.diagnosis.domain.suspect import frames_to_blame, ranked_candidates

DAY0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
SHA = {name: f"{i:x}" * 40 for i, name in enumerate(["init", "bad", "later", "fmt", "child", "parent", "c"], 1)}


def at(day: int) -> datetime:
    return DAY0 + timedelta(days=day)


def commit(name: str, day: int, *, root: bool = False) -> Commit:
    parents = () if root else ("0" * 40,)
    return Commit(SHA[name], parents, "Eve", "eve@example.com", at(day), at(day), f"subject of {name}")


def frame(depth: int, name: str, day: int) -> BlamedFrame:
    """The repository frame `depth` levels out from the innermost, its line last changed by commit `name`."""
    f = Frame(f"/srv/app/mod{depth}.py", 10 + depth, f"fn{depth}")
    return BlamedFrame(f, f"app/mod{depth}.py", 10 + depth, depth, f"fn{depth}", Blame(SHA[name], "Eve", name, at(day)))


def region(of: BlamedFrame, name: str, day: int) -> RegionChange:
    return RegionChange(of, Region(1, of.line, "function", of.function), commit(name, day))


def ancestry(pairs: frozenset[tuple[str, str]]) -> Callable[[str, str], bool]:
    """A `descends` answer from (descendant, ancestor) commit names."""
    names = {sha: name for name, sha in SHA.items()}
    return lambda a, b: (names[a], names[b]) in pairs


@dataclass(frozen=True)
class Case:
    blamed: list[tuple[str, int]]  # (commit, day) of each frame's failing line, innermost first
    regions: tuple[tuple[int, str, int], ...] = ()  # (frame depth, commit, day)
    descends: frozenset[tuple[str, str]] | None = None  # (a, b): commit a descends from commit b
    expected: tuple[str, int] | None = None  # ("blame" | "region", frame depth) of the suspect


CHOOSE_CASES = {
    "no candidates": Case(blamed=[], expected=None),
    "one frame": Case(blamed=[("bad", 2)], expected=("blame", 0)),
    "a caller changed last week outranks a helper untouched for a year": Case(
        blamed=[("init", 1), ("bad", 300)], expected=("blame", 1)
    ),
    "several frames: the newest of three wins wherever it is": Case(
        blamed=[("init", 1), ("later", 5), ("bad", 3)], expected=("blame", 1)
    ),
    "same date: the innermost frame wins": Case(blamed=[("init", 3), ("bad", 3)], expected=("blame", 0)),
    "relevant: the guard removed above the line beats the initial import blamed on it": Case(
        blamed=[("init", 1)], regions=((0, "bad", 2),), expected=("region", 0)
    ),
    "irrelevant: an older change of the enclosing code loses to the line's own newer change": Case(
        blamed=[("bad", 5)], regions=((0, "init", 2),), expected=("blame", 0)
    ),
    "same date: blame before region history": Case(
        blamed=[("bad", 3)], regions=((0, "later", 3),), expected=("blame", 0)
    ),
    "a region commit that also changed another failing line is reported as that blamed frame": Case(
        blamed=[("init", 1), ("bad", 2)], regions=((0, "bad", 2),), expected=("blame", 1)
    ),
    "ancestry beats a skewed committer clock": Case(
        blamed=[("child", 1), ("parent", 5)], descends=frozenset({("child", "parent")}), expected=("blame", 0)
    ),
    "without ancestry, dates decide": Case(
        blamed=[("child", 1), ("parent", 5)], descends=frozenset(), expected=("blame", 1)
    ),
    "ancestry is asked against the current best, not the first by date": Case(
        blamed=[("parent", 5), ("later", 3), ("child", 1)],
        descends=frozenset({("later", "parent"), ("child", "parent")}),
        expected=("blame", 1),
    ),
    # The ranking reads no diffs, so a newer reformatting of the failing line ranks first; the use case then sets
    # it aside as cosmetic (tests/unit/test_diagnosis_usecase.py) and names the guard's removal.
    "cosmetic: a newer reformatting of the line outranks an older real change": Case(
        blamed=[("fmt", 9)], regions=((0, "bad", 4),), expected=("blame", 0)
    ),
}


@pytest.mark.parametrize("case", CHOOSE_CASES.values(), ids=CHOOSE_CASES.keys())
def test_choose_suspect(case: Case) -> None:
    blamed = [frame(depth, name, day) for depth, (name, day) in enumerate(case.blamed)]
    regions = [region(blamed[depth], name, day) for depth, name, day in case.regions]
    descends = None if case.descends is None else ancestry(case.descends)
    chosen = next(ranked_candidates(blamed, regions, descends=descends), None)  # the newest, before any is vetted
    if case.expected is None:
        assert chosen is None
        return
    kind, depth = case.expected
    if kind == "region":
        assert isinstance(chosen, RegionChange) and chosen.frame == blamed[depth]
    else:
        assert chosen == blamed[depth]


def test_ranked_candidates_yield_each_commit_once_best_first_and_lazily() -> None:
    blamed = [frame(0, "init", 1), frame(1, "bad", 4), frame(2, "later", 6), frame(3, "bad", 4)]
    regions = [region(blamed[0], "fmt", 9), region(blamed[0], "bad", 4)]
    asked: list[tuple[str, str]] = []

    def descends(a: str, b: str) -> bool:
        asked.append((a, b))
        return False

    ranking = ranked_candidates(blamed, regions, descends=descends)
    first = next(ranking)
    assert isinstance(first, RegionChange) and first.commit.sha == SHA["fmt"]
    count = len(asked)
    rest = list(ranking)
    assert len(asked) > count  # the next steps were only asked for when wanted
    assert rest == [blamed[2], blamed[1], blamed[0]]  # `bad` as its innermost blamed frame, not its region change


@pytest.mark.parametrize(
    ("blamed", "suspect", "commits_after", "regions", "expected"),
    [
        pytest.param([("bad", 2)], "bad", 0, [], 0.85, id="changed the failing line, recent"),
        pytest.param([("bad", 2), ("bad", 2)], "bad", 0, [], 0.9, id="...and another failing line"),
        pytest.param([("bad", 2)], "bad", RECENT_COMMITS, [], 0.75, id="changed the failing line, not recent"),
        pytest.param([("bad", 2)], "bad", RECENT_COMMITS - 1, [], 0.85, id="recent up to the limit"),
        pytest.param([("init", 1)], "bad", 3, [(0, "bad")], 0.75, id="changed the enclosing function"),
        pytest.param([("init", 1), ("bad", 2)], "bad", 3, [], 0.6, id="changed the call path only"),
        pytest.param([("init", 1), ("init", 1)], "bad", 3, [(1, "bad")], 0.6, id="changed a caller's function"),
        pytest.param([("init", 1)], "init", 3, [], 0.55, id="root commit on the failing line"),
        pytest.param([("fmt", 1), ("init", 1)], "init", 50, [], 0.2, id="root commit on the call path, old"),
    ],
)
def test_score_confidence(
    blamed: list[tuple[str, int]], suspect: str, commits_after: int, regions: list[tuple[int, str]], expected: float
) -> None:
    frames = [frame(depth, name, day) for depth, (name, day) in enumerate(blamed)]
    changes = [region(frames[depth], name, 2) for depth, name in regions]
    suspect_commit = commit(suspect, 2, root=suspect == "init")
    assert score_confidence(frames, suspect_commit, commits_after=commits_after, regions=changes) == expected


def test_confidence_orders_the_kinds_of_evidence() -> None:
    """Changed the failing line > changed its enclosing code > changed the call path > a root-commit guess."""
    line = score_confidence([frame(0, "bad", 2)], commit("bad", 2), commits_after=1)
    inner = frame(0, "init", 1)
    enclosing = score_confidence([inner], commit("bad", 2), commits_after=1, regions=[region(inner, "bad", 2)])
    call_path = score_confidence([frame(0, "init", 1), frame(1, "bad", 2)], commit("bad", 2), commits_after=1)
    root_guess = score_confidence([frame(0, "init", 1)], commit("init", 1, root=True), commits_after=1)
    assert line > enclosing > call_path > root_guess


def test_frames_to_blame_is_innermost_first_one_per_location() -> None:
    outer, middle, inner = Frame("/a/x.py", 5, "outer"), Frame("/a/y.py", 7, "middle"), Frame("/a/y.py", 9, "inner")
    mapped = [(outer, "x.py"), (middle, "y.py"), (middle, "y.py"), (Frame("/a/y.py", None), "y.py"), (inner, "y.py")]
    assert frames_to_blame(mapped) == [(inner, "y.py", 9), (middle, "y.py", 7), (outer, "x.py", 5)]


def test_git_lines_split_on_newlines_only() -> None:
    assert git_lines("a\fb\nc\n") == ["a\fb", "c"]
    assert git_lines("a\n\n") == ["a", ""]


TRACE = ParsedTrace("python", "ZeroDivisionError", "division by zero", (Frame("/srv/app/mod0.py", 10, "fn0"),))


def test_the_report_without_a_suspect_blames_nobody() -> None:
    blamed = [frame(0, "init", 1)]
    found = report.without_suspect("a" * 40, TRACE, blamed, [])
    assert found.suspect is None and found.confidence == 0.1
    assert found.root_cause == "ZeroDivisionError: division by zero raised in fn0() at app/mod0.py:10."
    assert [e.commit for e in found.evidence] == [SHA["init"]]
    assert "the suspect commit" not in found.evidence[0].note


def test_the_report_names_the_region_commit_in_the_evidence_of_its_frame() -> None:
    inner = frame(0, "init", 1)
    change = region(inner, "bad", 2)
    found = report.with_suspect("a" * 40, TRACE, [inner], [change], change, change.commit, 0.75)
    assert found.suspect_region == change
    assert found.evidence[0].commit == SHA["bad"]
    assert "changed the enclosing function `fn0` (lines 1–10) — the suspect commit" in found.evidence[0].note
    assert "but the most recent change to the enclosing function `fn0`" in found.root_cause
    payload = found.to_diagnosis("shop", title="x" * 600, severity=Severity.P1)
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == SHA["bad"]
    assert payload.suspect_commit.author == "Eve <eve@example.com>"
    assert len(payload.title) == 500 and payload.title.endswith("…") and payload.severity == Severity.P1


def test_the_payload_carries_candidates_tried_exception_type_and_reproduction() -> None:
    inner = frame(0, "bad", 2)
    vars_ = FrameVars(file="app/mod0.py", function="fn0", line=10, vars={"x": 0})
    tried = [f"entry {n}" for n in range(40)]
    found = report.with_suspect(
        "a" * 40, TRACE, [inner], [], inner, commit("bad", 2), 0.85,
        candidates=[commit("init", 1)], tried=tried, reproduction=vars_,
    )  # fmt: skip
    payload = found.to_diagnosis("shop")
    assert [c.sha for c in payload.candidates] == [SHA["init"]]
    assert payload.tried == [*tried[:29], "... and 11 more"]
    assert (payload.exception_type, payload.reproduction) == ("ZeroDivisionError", vars_)
    assert found.root_cause.endswith("Set aside before it: entry 0; entry 1; entry 2; entry 3; entry 4; and 35 more.")


def test_without_trace_is_an_honest_non_answer() -> None:
    payload = report.without_trace("shop", "a" * 40, "checkout fails", Severity.P2, "the alert carries no stack trace")
    assert payload.suspect_commit is None and payload.evidence == [] and payload.confidence == 0.0
    assert payload.root_cause.startswith("No root cause found: the alert carries no stack trace.")

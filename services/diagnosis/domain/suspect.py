"""Choosing the suspect: from the candidate commits history offers for a stack trace, the one that most likely broke it.

Suspect rule. Two kinds of candidate commits, all read at the diagnosed revision:
  * blame: the commit that last changed the failing line of every repository frame;
  * region history: for the innermost REGION_FRAMES repository frames, the newest commit that touched the
    code enclosing the failing line (see `region`), from the enclosing definition down to the failing line.
Candidates are ranked newest first: a candidate that descends from the others in the history wins,
otherwise the latest commit date, ties going to the innermost frame (a caller changed last week that now
passes bad data outranks a helper untouched for a year) and to blame over region history.
The rule reads no diffs; the use case walks the ranking and sets aside cosmetic and test-only commits
(`vetting`), so a newer reformatting of a failing line does not outrank an older change of its logic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from pagerpatch.traces.stacktrace import Frame
from services.diagnosis.domain.facts import BlamedFrame, Candidate, RegionChange, candidate_sha

MAX_BLAMED_FRAMES = 25  # distinct locations, innermost first: deep recursion must not mean a thousand blames
REGION_FRAMES = 2  # innermost repository frames whose enclosing code's history is read
REGION_HISTORY = 8  # commits read back through each such region's history (newest first)
MAX_CANDIDATES = 10  # next suspects reported after the chosen one, for fixgen to fall through to


def frames_to_blame(mapped: Sequence[tuple[Frame, str]]) -> list[tuple[Frame, str, int]]:
    """The frames worth blaming, innermost first, as (frame, repository file, line): one per location.

    `mapped` is in call order (innermost last); frames without a usable line are left out. The caller stops
    after MAX_BLAMED_FRAMES successful blames (a line gone at the revision does not count).
    """
    out: list[tuple[Frame, str, int]] = []
    seen: set[tuple[str, int]] = set()
    for frame, file in reversed(mapped):
        if frame.line is None or frame.line < 1 or (file, frame.line) in seen:
            continue
        seen.add((file, frame.line))
        out.append((frame, file, frame.line))
    return out


def _rank(c: Candidate) -> tuple[float, int, int]:
    """Sort key: newest commit date first, then the innermost frame, then blame before region history."""
    if isinstance(c, RegionChange):
        return (-c.commit.committed_at.timestamp(), c.frame.depth, 1)
    return (-c.blame.committed_at.timestamp(), c.depth, 0)


def ranked_candidates(
    blamed: Sequence[BlamedFrame],
    regions: Sequence[RegionChange] = (),
    *,
    descends: Callable[[str, str], bool] | None = None,
) -> Iterator[Candidate]:
    """Every distinct candidate commit, most likely first by the rule in the module docstring (lazily: each step
    asks `descends` about the commits left, so a caller that stops early asks git less).

    `descends(a, b)` says whether commit a descends from commit b; without it only commit dates count.
    A commit that some frame's blame also names is yielded as that (innermost) blamed frame: it changed a
    failing line itself, which is the stronger evidence.
    """
    remaining: list[Candidate] = sorted([*blamed, *regions], key=_rank)
    while remaining:
        best = remaining[0]
        if descends is not None:  # committer dates lie after rebases and on skewed clocks; ancestry does not
            seen = {candidate_sha(best)}
            for other in remaining[1:]:
                sha = candidate_sha(other)
                if sha not in seen:
                    seen.add(sha)
                    if descends(sha, candidate_sha(best)):
                        best = other
        chosen = candidate_sha(best)
        yield next((b for b in blamed if b.blame.sha == chosen), best)
        remaining = [c for c in remaining if candidate_sha(c) != chosen]

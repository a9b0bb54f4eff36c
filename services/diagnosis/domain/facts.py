"""What history says about the failing code, as plain values: commits, blamed frames, changed regions.

A commit is git's own plain record (`CommitInfo`, no I/O in it); the adapter translates blame into the smaller
`Blame`, so the rules never depend on how git was asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pagerpatch.git.workspace import CommitInfo
from pagerpatch.traces.stacktrace import Frame
from services.diagnosis.domain.region import Region

# The facts about a commit that a diagnosis names and ranks (no parents means a root commit): the same record the
# git primitives return, so no second copy of it is kept here.
Commit = CommitInfo


@dataclass(frozen=True, slots=True)
class Blame:
    """The commit that last changed one line, as blame reports it: enough to rank it and to cite it."""

    sha: str
    author: str
    summary: str
    committed_at: datetime
    original_file: str | None = None  # where the line was written, when blame followed it from another path

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True, slots=True)
class BlamedFrame:
    """A repository frame, the file it maps to, and the commit that last changed its failing line."""

    frame: Frame
    file: str
    line: int
    depth: int  # 0 = innermost repository frame
    function: str | None  # only when verified to be defined in `file`
    blame: Blame


@dataclass(frozen=True, slots=True)
class RegionChange:
    """The newest commit that touched the region around a blamed frame's failing line."""

    frame: BlamedFrame
    region: Region  # a `name` here has been verified to be defined in the frame's file
    commit: Commit


Candidate = BlamedFrame | RegionChange  # a commit that could have caused the failure, and why it is one


def candidate_sha(c: Candidate) -> str:
    """The commit a candidate names."""
    return c.commit.sha if isinstance(c, RegionChange) else c.blame.sha

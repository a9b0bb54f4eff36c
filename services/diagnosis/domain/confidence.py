"""How sure diagnosis is of its suspect, by a rule reviewers can reason about.

Confidence rule, clamped to [0.05, 0.95]:
  0.50  a suspect was found
 +0.25  it last changed the innermost repository frame's line (the line that raised), or else
 +0.15  it changed the code enclosing that line, but not the line itself
 +0.10  it is recent: fewer than RECENT_COMMITS commits landed after it on the diagnosed revision
 +0.05  it also last changed another failing line of the trace
 -0.30  it is a root commit (every old line blames to the initial import: a weak signal)
No repository frame, or none that could be blamed: WITHOUT_SUSPECT, and no suspect.
No usable stack trace at all: WITHOUT_TRACE.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.diagnosis.domain.facts import BlamedFrame, Commit, RegionChange

RECENT_COMMITS = 20
WITHOUT_SUSPECT = 0.1
WITHOUT_TRACE = 0.0


def score_confidence(
    blamed: Sequence[BlamedFrame],
    suspect: Commit,
    *,
    commits_after: int,
    regions: Sequence[RegionChange] = (),
) -> float:
    """Confidence in `suspect` by the rule in this module's docstring (`blamed` innermost first)."""
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

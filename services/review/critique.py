"""The review agent's self-critique (pure): what it is asked, what it answers, and how its answer may raise the
rules' risk — never lower it. Plain values in, plain values out; the model call itself is in adapters.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.events import FixValidatedPayload, RiskAssessment, RiskLevel
from schemas.review import ReviewFinding
from services.review.domain import LEVELS, highest

PATCH_LIMIT = 40_000  # characters of the patch the model sees; the rest is cut with a marker
FINDINGS_IN_REASONS = 8  # findings also listed as risk reasons (what the pull request body shows)
POINTS_PER_LEVEL = 20


class Critique(BaseModel):
    """The review agent's structured answer (`emit_critique`)."""

    summary: Annotated[str, Field(max_length=500)] = Field(description="One or two sentences: is this a good fix?")
    risk: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] = Field(description="Your overall risk level for merging it")
    regression_risk: Annotated[str, Field(max_length=500)] = Field(
        default="", description="What could break elsewhere if this is merged"
    )
    would_merge: bool = Field(description="Would you merge this patch as it is?")
    findings: list[ReviewFinding] = Field(default_factory=list, max_length=20)


@dataclass(frozen=True)
class Unavailable:
    """The model could not review (down, over budget, an invalid answer): the rules alone decide, and say so."""

    reason: str


def prompt(fix: FixValidatedPayload, rules: RiskAssessment) -> str:
    """What the review agent reads: the diagnosis, the proof, the rules' verdict and the patch (as data)."""
    d = fix.diagnosis
    facts = {
        "repo": fix.repo,
        "strategy": fix.strategy,
        "root_cause": d.root_cause[:2000],
        "suspect_commit": d.suspect_commit.subject if d.suspect_commit else None,
        "proof": fix.proof,
        "proof_detail": fix.proof_detail[:1000],
        "reproduced": fix.reproduced,
        "reproduction_note": fix.reproduction_note[:1000],
        "tests_with_the_change": fix.tests.summary[:500],
        "files_changed": fix.files_changed[:50],
        "rules_level": rules.level.value,
        "rules_reasons": rules.reasons,
    }
    patch = fix.patch
    if len(patch) > PATCH_LIMIT:
        patch = patch[:PATCH_LIMIT] + f"\n…[patch truncated: {len(fix.patch) - PATCH_LIMIT} more characters]"
    return (
        "Review this proposed fix. Report each problem as a finding at a file and line of the patch, with its "
        "severity and what it could break; give your overall risk level and whether you would merge it. "
        "The deterministic rules already set the minimum risk shown below; you cannot lower it.\n\n"
        f"<facts>\n{json.dumps(facts, ensure_ascii=False, indent=1)}\n</facts>\n\n<patch>\n{patch}\n</patch>\n"
    )


def model_level(critique: Critique) -> RiskLevel:
    """The level the critique asks for: its own, its worst finding's, and at least HIGH when it would not merge."""
    levels = [RiskLevel(critique.risk), *(RiskLevel(f.severity) for f in critique.findings)]
    if not critique.would_merge:
        levels.append(RiskLevel.HIGH)
    return highest(*levels)


def reviewed(rules: RiskAssessment, outcome: Critique | Unavailable) -> RiskAssessment:
    """The rules' assessment with the critique applied: the level is the higher of the two (the rules are the
    floor), the findings are kept and listed among the reasons; an unavailable model leaves the rules, noted."""
    if isinstance(outcome, Unavailable):
        note = f"model review unavailable ({outcome.reason[:300]}): rules only"
        return rules.model_copy(update={"reasons": [*rules.reasons, note], "rules_level": rules.level})
    asked = model_level(outcome)
    level = highest(rules.level, asked)
    steps = LEVELS.index(level) - LEVELS.index(rules.level)
    verdict = "would merge" if outcome.would_merge else "would NOT merge"
    reasons = [*rules.reasons, f"model review ({verdict}, {asked.value}): {outcome.summary}"[:500]]
    if steps:
        reasons.append(f"model review raised the risk from {rules.level.value} to {level.value}")
    elif LEVELS.index(asked) < LEVELS.index(rules.level):
        reasons.append(f"model review said {asked.value}; the rules' {rules.level.value} stands (never lowered)")
    if outcome.regression_risk:
        reasons.append(f"regression risk (model review): {outcome.regression_risk}"[:500])
    for f in outcome.findings[:FINDINGS_IN_REASONS]:
        reasons.append(finding_line(f))
    return RiskAssessment(
        level=level,
        score=rules.score + POINTS_PER_LEVEL * steps,
        reasons=reasons,
        rules_level=rules.level,
        findings=list(outcome.findings),
        would_merge=outcome.would_merge,
    )


def finding_line(f: ReviewFinding) -> str:
    """`file:line [SEVERITY] message — regression risk`, within a reason's 500 characters."""
    where = f"{f.file}:{f.line}" if f.line else f.file
    risk = f" — could break: {f.regression_risk}" if f.regression_risk else ""
    return f"finding {where} [{f.severity}] {f.message}{risk}"[:500]

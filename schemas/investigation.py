"""The investigation agent's report, as it travels in `diagnosis.ready` (docs/investigation.md).

Every file, line, quote, symbol and commit in it passed the grounding guard against the worktree at the base
commit; what did not is dropped before the event is built, and only counted here (never named).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.envelope import Payload

_Text = Annotated[str, Field(max_length=500)]
_Long = Annotated[str, Field(max_length=20_000)]
_Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{7,64}$")]


class Claim(Payload):
    """One evidence item: a place in the code at the base commit, optionally a quote of it and a commit."""

    file: Annotated[str, Field(min_length=1, max_length=1000)]
    line: int | None = Field(default=None, ge=1)
    symbol: Annotated[str, Field(max_length=500)] | None = None  # function, class or method defined in `file`
    commit: _Sha | None = None
    quote: Annotated[str, Field(max_length=2000)] | None = None  # the text of `line` (or starting at it)
    note: _Text = ""


class Grounding(Payload):
    """What the grounding guard checked and rejected (counts only: a rejected name is never repeated)."""

    checked: int = Field(default=0, ge=0)
    rejected: int = Field(default=0, ge=0)
    retried: bool = False  # the report went back to the model once with its failures
    rejected_by_kind: dict[Literal["file", "line", "quote", "symbol", "commit"], int] = Field(default_factory=dict)


class InvestigationReport(Payload):
    summary: _Long
    root_cause: _Long
    evidence: list[Claim] = Field(default_factory=list, max_length=50)
    suspect_commit: _Sha | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    fixability: Literal["fixable", "needs-human", "not-code", "unknown"] = "unknown"
    next_steps: list[_Text] = Field(default_factory=list, max_length=20)
    would_have_helped: list[_Text] = Field(default_factory=list, max_length=20)  # stored for later synthesis
    grounding: Grounding = Field(default_factory=Grounding)
    steps: int = Field(default=0, ge=0)
    tool_calls: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0.0)

"""The review agent's self-critique, as it travels in the risk assessment (docs/review.md).

Findings are what the model saw wrong or risky in a patch, each at a place in the diff. They can only raise the
risk the deterministic rules gave; the pull request lists them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.envelope import Payload

# The same names as schemas.events.RiskLevel (not imported: events imports this module).
FindingSeverity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]


class ReviewFinding(Payload):
    """One problem the review agent found: where, how bad, what it could break."""

    file: Annotated[str, Field(min_length=1, max_length=1000)]
    line: int | None = Field(default=None, ge=1)
    severity: FindingSeverity
    message: Annotated[str, Field(min_length=1, max_length=500)]
    regression_risk: Annotated[str, Field(max_length=500)] = ""  # what could break if this is merged as it is

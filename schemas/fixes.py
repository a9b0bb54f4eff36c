"""One attempt at a fix, as `fix.validated` and `fix.failed` record them (docs/fixgen.md).

Fixgen tries strategies in order: `revert-and-test` (each candidate commit an attempt), then `model-patch` (up to
`fixgen.max_attempts` patches written by the fix agent). Every attempt is kept on the incident with its outcome and
reason, so a person reading `incidents show` or the PR sees what was tried and why each one was set aside.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.envelope import Payload

# proved: a check failing at the base passes with it; unproven: the suite passes both ways;
# refused: set aside before anything ran (policy limits, an unsafe path, a patch that is not one);
# failed: ran and did not hold (does not apply, tests fail, the regression test still fails...);
# unavailable: the model could not be asked (down, over budget, an invalid answer).
AttemptOutcome = Literal["proved", "unproven", "refused", "failed", "unavailable"]


class FixAttempt(Payload):
    """One strategy's try: its number in the incident's log, what it changed and how it ended."""

    number: int = Field(ge=1)
    strategy: Annotated[str, Field(max_length=100)]
    outcome: AttemptOutcome
    reason: Annotated[str, Field(max_length=2000)] = ""
    patch_summary: Annotated[str, Field(max_length=1000)] = ""  # the agent's summary, or the commit reverted
    files: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=50)

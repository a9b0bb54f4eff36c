"""What the pipeline did with one scenario's alert, read from the incident's events (pure: events in, facts out),
and whether a patch changes behaviour at all (the evaluation's own check, independent of the stages under test).
"""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pagerpatch.git.paths import is_test_path
from pagerpatch.incidents.state import TERMINAL
from pagerpatch.traces.symbols import without_docstrings
from schemas.envelope import Event
from schemas.events import (
    ApprovalRequestedPayload,
    DiagnosisReadyPayload,
    FixApprovedPayload,
    FixFailedPayload,
    FixValidatedPayload,
    PrOpenedPayload,
)

__all__ = ["DONE_STATES", "FINAL_EVENT", "Observed", "PipelineOutcome", "cosmetic_reason", "read_outcome"]

Observed = Literal["proved", "unproven", "refused", "none"]
# States in which the pipeline has nothing more to do without a person: terminal, waiting, or a pull request opened.
DONE_STATES = frozenset({*TERMINAL, "awaiting_approval", "pr_opened"})
# The event that brings an incident into each done state; the evaluation waits for it before reading the outcome.
FINAL_EVENT = {"pr_opened": "pr.opened", "failed": "fix.failed", "awaiting_approval": "approval.requested",
               "rejected": "fix.rejected"}  # fmt: skip
_DOCS = (".md", ".rst", ".txt", ".adoc")
_JS = (".js", ".cjs", ".mjs")
# A JavaScript token stream, roughly: strings and template literals kept whole, comments and whitespace dropped
# (whitespace between two words is kept as one space). Enough to tell a comment or formatting change from code.
_JS_PIECE = re.compile(
    r"""(?P<str>'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`)|(?P<comment>//[^\n]*|/\*.*?\*/)"""
    r"|(?P<space>\s+)|(?P<word>[\w$]+)|(?P<other>.)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class PipelineOutcome:
    """The facts of one incident: the suspect, the verdict on its revert, the review, and the pull request."""

    incident_id: uuid.UUID | None
    state: str
    suspect: str | None = None  # the diagnosis's suspect commit
    reverted: str | None = None  # the commit fixgen actually reverted
    outcome: Observed = "none"
    detail: str = ""  # proof_detail, or why fixgen refused, or why there is no outcome
    tried: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()  # test ids the verdict names: fixed, removed or failing
    fixed_tests: tuple[str, ...] = ()  # failing at the base commit, passing with the fix
    risk: str | None = None
    approved_by: str | None = None  # "policy" when review let it through without a person
    patch: str | None = None  # the validated fix's diff against the base commit
    regression_test: bool = False
    pr_branch: str | None = None
    pr_url: str | None = None

    @property
    def auto_approved(self) -> bool:
        return self.approved_by == "policy"

    def says(self, text: str) -> bool:
        """Whether the verdict (detail, tried entries, test ids) names `text`."""
        return any(text.lower() in part.lower() for part in (self.detail, *self.tried, *self.tests))


def read_outcome(events: Sequence[Event[Any]], state: str, incident_id: uuid.UUID | None) -> PipelineOutcome:
    """The outcome the incident's events record (the latest event of each type counts)."""
    latest: dict[str, Any] = {e.type: e.payload for e in events}
    diagnosis = latest.get("diagnosis.ready")
    suspect = None
    if isinstance(diagnosis, DiagnosisReadyPayload) and diagnosis.suspect_commit is not None:
        suspect = diagnosis.suspect_commit.sha
    out = PipelineOutcome(incident_id, state, suspect=suspect)
    validated, failed = latest.get("fix.validated"), latest.get("fix.failed")
    if isinstance(validated, FixValidatedPayload):
        out = _validated(out, validated)
    elif isinstance(failed, FixFailedPayload):
        failing = tuple(failed.tests.failed_tests) if failed.tests else ()
        out = replace(out, outcome="refused", detail=failed.reason, tried=tuple(failed.tried), tests=failing)
    elif diagnosis is None:
        out = replace(out, detail=f"no diagnosis (incident {state or 'not opened'})")
    else:
        out = replace(out, detail=f"no fix.validated or fix.failed (incident {state})")
    approved, requested = latest.get("fix.approved"), latest.get("approval.requested")
    if isinstance(approved, FixApprovedPayload):
        out = replace(out, risk=approved.risk.level.value, approved_by=approved.approved_by)
    elif isinstance(requested, ApprovalRequestedPayload):
        out = replace(out, risk=requested.risk.level.value)
    pr = latest.get("pr.opened")
    if isinstance(pr, PrOpenedPayload):
        out = replace(out, pr_branch=pr.branch, pr_url=pr.url)
    return out


def _validated(out: PipelineOutcome, fix: FixValidatedPayload) -> PipelineOutcome:
    tests = (*fix.fixed_tests, *fix.removed_tests, *fix.tests.failed_tests)
    return replace(
        out,
        outcome="proved" if fix.proof == "proved" else "unproven",
        detail=fix.proof_detail,
        reverted=fix.reverted.sha if fix.reverted else None,
        tests=tests,
        fixed_tests=tuple(fix.fixed_tests),
        patch=fix.patch,
        regression_test=bool(fix.regression_test),
    )


def cosmetic_reason(changes: Mapping[str, tuple[str | None, str | None]]) -> str | None:
    """Why a patch changes no behaviour -- nothing changed, only tests or documentation, or Python (JavaScript) that
    is the same program once docstrings, comments and formatting are set aside -- or None when it changes code.

    `changes` maps each file the patch touches to its text before and after (None: absent).
    """
    code = {path: texts for path, texts in changes.items() if texts[0] != texts[1]}
    if not code:
        return "the patch changes nothing"
    behaviour = {path: texts for path, texts in code.items() if not _test_or_doc(path)}
    if not behaviour:
        return f"only tests or documentation change ({', '.join(sorted(code)[:3])})"
    for path, (before, after) in behaviour.items():
        if before is None or after is None:
            return None
        if path.endswith(_JS) and _js_tokens(before) == _js_tokens(after):
            continue
        if not path.endswith(".py") or not _same_program(before, after):
            return None
    return f"only docstrings, comments or formatting change ({', '.join(sorted(behaviour)[:3])})"


def _test_or_doc(path: str) -> bool:
    return path.endswith(_DOCS) or is_test_path(path)


def _js_tokens(text: str) -> list[str]:
    """`text` as JavaScript tokens without comments and insignificant whitespace."""
    out: list[str] = []
    for piece in _JS_PIECE.finditer(text):
        kind = piece.lastgroup
        if kind == "comment" or kind == "space":
            continue
        if kind == "word" and out and re.fullmatch(r"[\w$]+", out[-1]):
            out.append(" ")
        out.append(piece.group())
    return out


def _same_program(before: str, after: str) -> bool:
    try:
        old, new = ast.parse(before), ast.parse(after)
    except SyntaxError:
        return False
    return ast.dump(without_docstrings(old)) == ast.dump(without_docstrings(new))

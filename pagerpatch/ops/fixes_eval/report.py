"""Adding up `pagerpatch eval fixes` (pure): each scenario against its expectations, the totals, the table rows,
the JSON document, and whether the run fails: a suspect accuracy below `--min-suspect-accuracy`, a share of
scenarios meeting every expectation below `--min`, or any unproven or cosmetic change approved as LOW risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pagerpatch.ops.fixes_eval.history import Expected
from pagerpatch.ops.fixes_eval.outcome import PipelineOutcome

__all__ = ["TABLE_HEADER", "EvalReport", "OracleTarget", "OracleVerdict", "ScenarioResult", "Totals", "failures",
           "summary_lines", "table_lines", "table_rows", "to_json", "totals_of"]  # fmt: skip

OracleTarget = Literal["pr", "pending", "none"]
TABLE_HEADER = ("scenario", "lang", "expected", "suspect-found", "fix-validated", "risk", "state", "pr",
                "oracle-on-pr", "met")  # fmt: skip
_LANG = {"python": "py", "javascript": "js"}
_VALIDATED = {"proved": "yes (proved)", "unproven": "yes (unproven)", "refused": "no (refused)", "none": "no"}


@dataclass(frozen=True, slots=True)
class OracleVerdict:
    """The oracle's verdict on the fix: the pull request's patch, else the one waiting for approval, else none."""

    target: OracleTarget
    fixes: bool | None  # None: there was no fix to judge
    detail: str


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """One scenario: what was expected, what the pipeline did, and what the oracle says about it."""

    name: str
    letter: str
    expected: Expected
    expected_suspect: str
    outcome: PipelineOutcome
    oracle: OracleVerdict
    oracle_valid: bool  # the oracle fails at HEAD: without that it proves nothing about a fix
    cosmetic: str | None  # why the fix changes no behaviour (or reverts a commit known to change none)
    mentions: str | None  # what the verdict must name
    seconds: float
    language: str = "python"

    @property
    def suspect_ok(self) -> bool:
        return self.outcome.suspect == self.expected_suspect

    @property
    def outcome_ok(self) -> bool:
        return self.outcome.outcome == self.expected

    @property
    def fix_validated(self) -> bool:
        """fixgen published fix.validated (proved or unproven), not fix.failed or nothing."""
        return self.outcome.outcome in ("proved", "unproven")

    @property
    def oracle_passes_on_pr(self) -> bool | None:
        """The oracle on the pull request's branch: passes, fails, or None when no PR was opened (or read)."""
        return self.oracle.fixes if self.oracle.target == "pr" else None

    @property
    def mentions_ok(self) -> bool:
        return self.mentions is None or self.outcome.says(self.mentions)

    @property
    def approved_low_unproven_or_cosmetic(self) -> bool:
        """The false fix this evaluation exists to catch: let through as LOW risk although nothing proves it."""
        o = self.outcome
        return o.approved_by is not None and o.risk == "LOW" and (o.outcome == "unproven" or self.cosmetic is not None)

    @property
    def auto_approved_unproven(self) -> bool:
        return self.outcome.auto_approved and self.outcome.outcome != "proved"

    @property
    def met(self) -> bool:
        """Every expectation holds: suspect, outcome, what the verdict names, and no fix the oracle rejects."""
        return (self.suspect_ok and self.outcome_ok and self.mentions_ok and self.oracle_valid
                and self.oracle.fixes is not False and not self.approved_low_unproven_or_cosmetic)  # fmt: skip

    def misses(self) -> list[str]:
        """What did not hold, worded for the operator."""
        o, out = self.outcome, []
        if not self.oracle_valid:
            out.append("the oracle does not fail at HEAD: the scenario is broken")
        if not self.suspect_ok:
            out.append(f"suspect {_short(o.suspect)}, expected {_short(self.expected_suspect)}")
        if not self.outcome_ok:
            out.append(f"outcome {o.outcome}, expected {self.expected}")
        if not self.mentions_ok:
            out.append(f"the verdict does not name {self.mentions!r}")
        if self.oracle.fixes is False:
            out.append(f"the {'pull request' if self.oracle.target == 'pr' else 'pending fix'} does not fix the bug "
                       f"({self.oracle.detail})")  # fmt: skip
        if self.approved_low_unproven_or_cosmetic:
            out.append(f"approved as LOW risk by {o.approved_by} although {self.cosmetic or 'unproven'}")
        return out


@dataclass(frozen=True, slots=True)
class Totals:
    scenarios: int
    suspect_correct: int
    proved: int
    unproven: int
    refused: int
    no_outcome: int
    prs_opened: int
    prs_fixing_the_bug: int
    awaiting_approval: int
    pending_fixing_the_bug: int
    low_risk_unproven_or_cosmetic_approvals: int
    auto_approved_unproven: int
    expectations_met: int

    @property
    def suspect_accuracy(self) -> float:
        return self.suspect_correct / self.scenarios if self.scenarios else 0.0

    @property
    def score(self) -> float:
        """The share of scenarios meeting every expectation (what `--min` is a floor of)."""
        return self.expectations_met / self.scenarios if self.scenarios else 0.0


@dataclass(frozen=True, slots=True)
class EvalReport:
    run: str
    results: tuple[ScenarioResult, ...]
    seconds: float

    @property
    def totals(self) -> Totals:
        return totals_of(self.results)


def totals_of(results: Sequence[ScenarioResult]) -> Totals:
    def count(test: Any) -> int:
        return sum(1 for r in results if test(r))

    return Totals(
        scenarios=len(results),
        suspect_correct=count(lambda r: r.suspect_ok),
        proved=count(lambda r: r.outcome.outcome == "proved"),
        unproven=count(lambda r: r.outcome.outcome == "unproven"),
        refused=count(lambda r: r.outcome.outcome == "refused"),
        no_outcome=count(lambda r: r.outcome.outcome == "none"),
        prs_opened=count(lambda r: r.outcome.pr_branch is not None),
        prs_fixing_the_bug=count(lambda r: r.oracle.target == "pr" and r.oracle.fixes is True),
        awaiting_approval=count(lambda r: r.outcome.state == "awaiting_approval"),
        pending_fixing_the_bug=count(lambda r: r.oracle.target == "pending" and r.oracle.fixes is True),
        low_risk_unproven_or_cosmetic_approvals=count(lambda r: r.approved_low_unproven_or_cosmetic),
        auto_approved_unproven=count(lambda r: r.auto_approved_unproven),
        expectations_met=count(lambda r: r.met),
    )


def failures(report: EvalReport, min_suspect_accuracy: float, min_score: float = 0.0) -> list[str]:
    """Why the run fails (empty: it passes): the two floors, and false fixes approved as LOW risk."""
    t = report.totals
    out: list[str] = []
    if t.suspect_accuracy < min_suspect_accuracy:
        out.append(f"suspect accuracy {t.suspect_accuracy:.2f} < {min_suspect_accuracy:.2f}")
    if t.score < min_score:
        out.append(f"expectations met {t.score:.2f} ({t.expectations_met}/{t.scenarios}) < {min_score:.2f} (--min)")
    if t.low_risk_unproven_or_cosmetic_approvals:
        names = ", ".join(r.name for r in report.results if r.approved_low_unproven_or_cosmetic)
        out.append(f"{t.low_risk_unproven_or_cosmetic_approvals} unproven or cosmetic change(s) approved as LOW "
                   f"risk: {names}")  # fmt: skip
    return out


def table_rows(report: EvalReport) -> list[tuple[str, ...]]:
    """One row per scenario, in TABLE_HEADER's columns (a miss in capitals: NO, FAILS, and what was expected)."""
    rows: list[tuple[str, ...]] = []
    for r in report.results:
        o = r.outcome
        suspect = "yes" if r.suspect_ok else f"NO {_short(o.suspect)}"
        if o.reverted and o.reverted != o.suspect:
            suspect += f", reverted {_short(o.reverted)}"
        validated = _VALIDATED[o.outcome] if r.outcome_ok else f"{_VALIDATED[o.outcome].upper()}, want {r.expected}"
        risk = f"{o.risk or '-'}{' auto' if o.auto_approved else ''}"
        pr = o.pr_branch.rsplit("/", 1)[-1][:8] if o.pr_branch else "-"
        oracle = {True: "passes", False: "FAILS", None: "-"}[r.oracle.fixes]
        if r.oracle.target == "pending" and r.oracle.fixes is not None:
            oracle += " (pending fix)"
        label, lang = f"{r.letter} {r.name}".strip(), _LANG.get(r.language, r.language)
        rows.append((label, lang, r.expected, suspect, validated, risk, o.state or "-", pr, oracle,
                     "yes" if r.met else "NO"))  # fmt: skip
    return rows


def table_lines(report: EvalReport) -> list[str]:
    """The table as aligned plain text (never cut to a terminal's width: it is read in CI logs too)."""
    rows = [TABLE_HEADER, *table_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def summary_lines(report: EvalReport, min_suspect_accuracy: float, min_score: float = 0.0) -> list[str]:
    """The totals, then each scenario that missed and why, then the run's verdict."""
    t = report.totals
    lines = [
        f"suspect accuracy: {t.suspect_accuracy:.2f} ({t.suspect_correct}/{t.scenarios})",
        f"outcomes: {t.proved} proved, {t.unproven} unproven, {t.refused} refused, {t.no_outcome} without an outcome",
        f"pull requests: {t.prs_opened} opened, {t.prs_fixing_the_bug} fix the bug by the oracle; "
        f"{t.awaiting_approval} awaiting approval ({t.pending_fixing_the_bug} of whose fixes would fix it)",
        f"unproven or cosmetic changes approved as LOW risk: {t.low_risk_unproven_or_cosmetic_approvals} (must be 0); "
        f"unproven fixes approved without a person: {t.auto_approved_unproven}",
        f"expectations met: {t.expectations_met}/{t.scenarios} ({t.score:.2f}) in {report.seconds:.0f}s",
    ]
    for r in report.results:
        if not r.met:
            label = f"{r.letter} {r.name}".strip()
            lines.append(f"  {label}: " + "; ".join(r.misses()) + f" -- {r.outcome.detail[:300]}")
    problems = failures(report, min_suspect_accuracy, min_score)
    lines.append("FAILED: " + "; ".join(problems) if problems else "passed")
    return lines


def to_json(report: EvalReport, min_suspect_accuracy: float, min_score: float = 0.0) -> dict[str, Any]:
    """The whole report as one JSON document (`--json`)."""
    t = report.totals
    problems = failures(report, min_suspect_accuracy, min_score)
    return {
        "run": report.run,
        "seconds": round(report.seconds, 1),
        "min_suspect_accuracy": min_suspect_accuracy,
        "min": min_score,
        "passed": not problems,
        "failures": problems,
        "totals": {"suspect_accuracy": round(t.suspect_accuracy, 4), "score": round(t.score, 4), **{
            name: getattr(t, name) for name in Totals.__dataclass_fields__
        }},
        "scenarios": [_scenario_json(r) for r in report.results],
    }  # fmt: skip


def _scenario_json(r: ScenarioResult) -> dict[str, Any]:
    o = r.outcome
    return {
        "name": r.name, "letter": r.letter, "language": r.language, "expected": r.expected,
        "expected_suspect": r.expected_suspect, "suspect": o.suspect, "suspect_ok": r.suspect_ok,
        "suspect_found": r.suspect_ok, "fix_validated": r.fix_validated, "oracle_passes_on_pr": r.oracle_passes_on_pr,
        "reverted": o.reverted, "outcome": o.outcome,
        "outcome_ok": r.outcome_ok, "detail": o.detail, "tried": list(o.tried), "tests": list(o.tests),
        "fixed_tests": list(o.fixed_tests),
        "mentions": r.mentions, "mentions_ok": r.mentions_ok, "risk": o.risk, "approved_by": o.approved_by,
        "state": o.state, "incident_id": str(o.incident_id) if o.incident_id else None,
        "regression_test": o.regression_test, "pr_branch": o.pr_branch, "pr_url": o.pr_url,
        "oracle": {"target": r.oracle.target, "fixes": r.oracle.fixes, "detail": r.oracle.detail,
                   "valid": r.oracle_valid},
        "cosmetic": r.cosmetic, "approved_low_unproven_or_cosmetic": r.approved_low_unproven_or_cosmetic,
        "auto_approved_unproven": r.auto_approved_unproven, "met": r.met, "misses": r.misses(),
        "seconds": round(r.seconds, 1),
    }  # fmt: skip


def _short(sha: str | None) -> str:
    return sha[:8] if sha else "-"

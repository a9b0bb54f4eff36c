"""What the notifier writes: branch name, pull request title and body, the proof first (pure)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from schemas.events import (
    DiagnosisReadyPayload,
    Evidence,
    FixApprovedPayload,
    FixValidatedPayload,
    RiskAssessment,
    RiskLevel,
    Severity,
    SuspectCommit,
    TestRun,
)
from services.notifier.domain import BODY_LIMIT, branch_name, pr_body, pr_title, proof_lines

INCIDENT = uuid.UUID("3f2b8c1e-4d5a-4e6f-9a0b-1c2d3e4f5a6b")
SHA = "0123456789abcdef0123456789abcdef01234567"
SUSPECT = "fedcba9876543210fedcba9876543210fedcba98"


def approved(
    *,
    title: str = "KeyError for unknown coupon codes",
    commit_message: str = 'Revert "Normalize coupon codes"\n\nThis reverts commit abc.',
    evidence: list[Evidence] | None = None,
    suspect: SuspectCommit | None = None,
    passed: bool = True,
    reason: str = "",
    risk: RiskAssessment | None = None,
    **fix: Any,
) -> FixApprovedPayload:
    diagnosis = DiagnosisReadyPayload(
        repo="shop",
        base_commit=SHA,
        root_cause="find_coupon indexes COUPONS with a code that was never normalized.\nSecond line.",
        suspect_commit=suspect,
        evidence=evidence if evidence is not None else [],
        confidence=0.87,
        title=title,
        severity=Severity.P1,
    )
    fields: dict[str, Any] = {
        "repo": "shop",
        "base_commit": SHA,
        "strategy": "revert-suspect",
        "patch": "diff --git a/x b/x\n",
        "commit_message": commit_message,
        "files_changed": ["shopcart/pricing.py", "tests/test_pricing.py"],
        "lines_added": 7,
        "lines_removed": 3,
        "tests": TestRun(
            command="python -m pytest -q", passed=passed, exit_code=0, summary="12 passed", duration_s=4.26
        ),
        "attempts": 2,
        "diagnosis": diagnosis,
    }
    fields.update(fix)
    return FixApprovedPayload(
        risk=risk or RiskAssessment(level=RiskLevel.MEDIUM, score=20, reasons=["diff of 250 lines is over half"]),
        approved_by="alice",
        reason=reason,
        fix=FixValidatedPayload(**fields),
    )


# ---------------------------------------------------------------- branch and title


@pytest.mark.parametrize("incident", [INCIDENT, uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)])
def test_branch_name(incident: uuid.UUID) -> None:
    name = branch_name(incident)
    assert name == f"pagerpatch/{incident}"
    assert uuid.UUID(name.removeprefix("pagerpatch/")) == incident
    assert " " not in name


@pytest.mark.parametrize(
    ("title", "commit_message", "expected"),
    [
        ("KeyError for unknown coupon codes", "anything", "fix: KeyError for unknown coupon codes"),
        ("", 'Revert "Normalize coupon codes"\n\nbody', 'fix: Revert "Normalize coupon codes"'),
        ("", "one line", "fix: one line"),
        ("t" * 400, "x", "fix: " + "t" * 195),  # clipped to 200 characters
    ],
)
def test_pr_title(title: str, commit_message: str, expected: str) -> None:
    result = pr_title(approved(title=title, commit_message=commit_message))
    assert result == expected
    assert len(result) <= 200


def test_pr_title_with_no_title_and_empty_commit_message() -> None:
    assert pr_title(approved(title="", commit_message="")).startswith("fix:")


# ---------------------------------------------------------------- body


def test_pr_body_has_every_section() -> None:
    fix = approved(
        evidence=[
            Evidence(file="shopcart/pricing.py", line=64, function="find_coupon", commit=SUSPECT, note="KeyError"),
            Evidence(file="shopcart/api.py", line=50),
        ],
        suspect=SuspectCommit(sha=SUSPECT, subject="Normalize coupon codes"),
        reason="looks right",
        risk=RiskAssessment(
            level=RiskLevel.HIGH, score=90, reasons=["touches protected path(s): deploy/a.yaml", "11 files changed"]
        ),
    )
    body = pr_body(INCIDENT, fix)
    lines = body.splitlines()
    assert lines[0].startswith("UNPROVEN: ")  # nothing in this fix says what proves it
    assert lines[3] == f"Automated fix for incident `{INCIDENT}` (P1)."
    assert "find_coupon indexes COUPONS with a code that was never normalized." in lines
    assert "Confidence: 0.87 (strategy: stacktrace-blame)" in lines
    assert f"Suspect commit: `{SUSPECT[:12]}` Normalize coupon codes" in lines
    assert "### Evidence" in lines
    assert f"- `shopcart/pricing.py:64` in `find_coupon` (last changed in `{SUSPECT[:12]}`) — KeyError" in lines
    assert "- `shopcart/api.py:50`" in lines
    assert "Strategy: revert-suspect; 2 file(s), +7/-3; attempts: 2" in lines
    assert "- `shopcart/pricing.py`" in lines
    assert "- `tests/test_pricing.py`" in lines
    assert "`python -m pytest -q` in the bubblewrap sandbox: passed — 12 passed (4.3s)" in lines
    assert "HIGH (score 90); approved by alice: looks right" in lines
    assert "- touches protected path(s): deploy/a.yaml" in lines
    assert "- 11 files changed" in lines
    # sections in order
    order = [lines.index(h) for h in ("## Diagnosis", "### Evidence", "## Change", "## Tests", "## Risk")]
    assert order == sorted(order)


@pytest.mark.parametrize(
    ("kwargs", "present", "absent"),
    [
        ({}, ["MEDIUM (score 20); approved by alice"], ["### Evidence", "Suspect commit:", "approved by alice:"]),
        ({"passed": False}, [": FAILED — 12 passed"], [": passed —"]),
        ({"reason": "ok by me"}, ["approved by alice: ok by me"], []),
        (
            {"evidence": [Evidence(file="a/b.py", line=3, note="")]},
            ["### Evidence", "\n- `a/b.py:3`\n"],  # nothing after the location
            ["last changed in"],
        ),
    ],
)
def test_pr_body_optional_parts(kwargs: dict[str, Any], present: list[str], absent: list[str]) -> None:
    body = pr_body(INCIDENT, approved(**kwargs))
    assert str(INCIDENT) in body
    for text in present:
        assert text in body
    for text in absent:
        assert text not in body


# ---------------------------------------------------------------- proof, baseline, fixed and removed tests

FAILING = "tests/test_pricing.py::test_unknown_coupon_is_refused"
REVERTED = SuspectCommit(sha=SUSPECT, subject="pricing: simplify coupon lookup", author="Sam")
BASE_RUN = TestRun(command="python -m pytest -q", passed=False, exit_code=1, summary="1 failed, 11 passed",
                   duration_s=4.0, failed_tests=[FAILING])  # fmt: skip


def proved(**fix: Any) -> FixApprovedPayload:
    """A fix proved by a test that fails at the base commit and passes with the revert."""
    fields: dict[str, Any] = {
        "proof": "proved",
        "proof_detail": f"1 failing at the base commit pass with {SUSPECT[:12]} reverted: {FAILING}",
        "base_tests": BASE_RUN,
        "fixed_tests": [FAILING],
        "reverted": REVERTED,
    }
    fields.update(fix)
    return approved(**fields)


def test_a_proved_fix_says_so_first_with_what_proves_it() -> None:
    lines = pr_body(INCIDENT, proved()).splitlines()
    assert lines[0] == f"Proved: 1 failing at the base commit pass with {SUSPECT[:12]} reverted: {FAILING}."
    assert not any("UNPROVEN" in line for line in lines)


@pytest.mark.parametrize(
    ("detail", "first"),
    [
        ("", "UNPROVEN: the tests pass with and without this change, so nothing shows it fixes the failure."),
        # fixgen's own wording starts with the word already: it is not doubled
        ("UNPROVEN: the test suite passes at the base commit and with abc reverted, so no test shows what it fixes",
         "UNPROVEN: the test suite passes at the base commit and with abc reverted, so no test shows what it fixes."),
        ("unproven: the tests time out at the base commit.", "UNPROVEN: the tests time out at the base commit."),
    ],
)  # fmt: skip
def test_an_unproven_fix_says_so_plainly_in_the_first_lines(detail: str, first: str) -> None:
    lines = pr_body(INCIDENT, approved(proof="unproven", proof_detail=detail)).splitlines()
    assert lines[0] == first
    assert lines[1].startswith("No check fails without this change and passes with it")


def test_proof_lines_without_a_detail() -> None:
    assert proof_lines(proved(proof_detail="").fix) == [
        "Proved: a check that fails at the base commit passes with this change."
    ]
    assert proof_lines(proved(proof_detail="Proved: the reproduction raises KeyError at the base only").fix) == [
        "Proved: the reproduction raises KeyError at the base only."
    ]


def test_the_body_shows_the_baseline_the_run_after_and_the_fixed_tests() -> None:
    body = pr_body(INCIDENT, proved())
    lines = body.splitlines()
    assert f"At the base commit `{SHA[:12]}`: `python -m pytest -q` in the bubblewrap sandbox: FAILED — " \
           "1 failed, 11 passed (4.0s)" in lines  # fmt: skip
    assert f"Failing at the base commit: `{FAILING}`" in lines
    assert "With the change: `python -m pytest -q` in the bubblewrap sandbox: passed — 12 passed (4.3s)" in lines
    assert lines[lines.index("### Fixed tests") + 2] == f"- `{FAILING}`"
    assert "### Removed tests" not in lines and "### Regression test" not in lines


def test_the_body_names_the_commit_actually_reverted_and_what_was_tried() -> None:
    first = SuspectCommit(sha="a" * 40, subject="docs: reword find_coupon docstring")
    tried = ["aaaaaaaaaaaa: only docstrings changed in the region", "bbbbbbbbbbbb: reverting it conflicts"]
    fix = proved(diagnosis=approved(suspect=first).fix.diagnosis.model_copy(update={"tried": tried}))
    lines = pr_body(INCIDENT, fix).splitlines()
    assert f"Suspect commit: `{'a' * 12}` docs: reword find_coupon docstring" in lines  # the diagnosis's first pick
    assert f"Reverted commit: `{SUSPECT[:12]}` pricing: simplify coupon lookup (Sam)" in lines
    at = lines.index("### What was tried")
    assert lines[at + 1 : at + 3] == [f"- {t}" for t in tried]
    order = [lines.index(h) for h in ("## Diagnosis", "### What was tried", "## Change", "## Tests", "### Fixed tests",
                                      "## Risk")]  # fmt: skip
    assert order == sorted(order)


def test_without_tried_baseline_or_reverted_those_parts_are_left_out() -> None:
    body = pr_body(INCIDENT, approved())
    for absent in ("### What was tried", "Reverted commit:", "At the base commit", "With the change:",
                   "### Fixed tests", "### Removed tests"):  # fmt: skip
        assert absent not in body


def test_the_tests_a_revert_removes_are_counted_and_listed() -> None:
    removed = ["tests/test_pricing.py::test_normalized", "tests/test_pricing.py::test_lowercase"]
    lines = pr_body(INCIDENT, proved(removed_tests=removed)).splitlines()
    at = lines.index("### Removed tests")
    assert lines[at + 1 : at + 4] == ["This revert removes 2 tests:", *[f"- `{t}`" for t in removed]]
    single = pr_body(INCIDENT, proved(removed_tests=removed[:1]))
    assert "This revert removes 1 test:" in single


def test_long_test_lists_are_cut_and_counted() -> None:
    removed = [f"tests/test_m.py::test_{i}" for i in range(25)]
    lines = pr_body(INCIDENT, proved(removed_tests=removed, fixed_tests=removed)).splitlines()
    assert "This revert removes 25 tests:" in lines
    assert lines.count("- `tests/test_m.py::test_19`") == 2 and "- `tests/test_m.py::test_20`" not in lines
    assert lines.count("- … and 5 more") == 2


def test_the_regression_test_is_shown_in_a_fence_its_own_backticks_cannot_close() -> None:
    code = 'def test_find_coupon_replayed():\n    """Replays ``find_coupon`` with ```the captured``` arguments."""\n'
    lines = pr_body(INCIDENT, proved(regression_test=code)).splitlines()
    at = lines.index("### Regression test")
    assert lines[at + 2] == "````python"
    assert lines[at + 3 : at + 5] == code.rstrip().splitlines()
    assert lines[at + 5] == "````"


def test_a_huge_body_is_clipped_but_keeps_its_proof_line() -> None:
    tried = ["c" * 12 + ": " + "x" * 480] * 30
    diagnosis = approved().fix.diagnosis.model_copy(update={"tried": tried, "root_cause": "r" * 20_000})
    body = pr_body(INCIDENT, proved(diagnosis=diagnosis, regression_test="y = 1\n" * 3000,
                                    removed_tests=["t" * 500] * 50, fixed_tests=["f" * 500] * 50))  # fmt: skip
    assert len(body) <= BODY_LIMIT and body.startswith("Proved: ") and body.endswith("…(clipped)")


def test_the_review_agents_findings_and_the_reproduction_get_their_own_sections() -> None:
    from schemas.review import ReviewFinding

    findings = [
        ReviewFinding(
            file="shopcart/pricing.py",
            line=12,
            severity="HIGH",
            message="swallows every KeyError",
            regression_risk="typos in coupon codes pass silently",
        ),
        ReviewFinding(file="tests/test_pricing.py", severity="LOW", message="asserts only the type"),
    ]
    risk = RiskAssessment(level=RiskLevel.HIGH, score=60, reasons=["r"], findings=findings, would_merge=False,
                          rules_level=RiskLevel.MEDIUM)  # fmt: skip
    test = "def test_unknown_coupon():\n    assert price(10, 'NOPE') == 10\n"
    body = pr_body(INCIDENT, approved(risk=risk, strategy="model-patch", regression_test=test, reproduced=True,
                                      reproduction_note="fails at the base with KeyError"))  # fmt: skip
    lines = body.splitlines()
    at = lines.index("### Review findings")
    assert lines[at + 1] == "The review agent's self-critique (it would NOT merge this; the rules alone said MEDIUM):"
    assert lines[at + 2] == (
        "- **HIGH** `shopcart/pricing.py:12`: swallows every KeyError Could break: typos in coupon codes pass silently"
    )
    assert lines[at + 3] == "- **LOW** `tests/test_pricing.py`: asserts only the type"
    assert "Reproduction: fails at the base with KeyError" in lines
    regression = lines.index("### Regression test")
    assert lines[regression + 1].startswith("Written with the fix; it fails at the base commit")
    assert lines[regression + 2] == "```" and lines[regression + 3] == "def test_unknown_coupon():"
    assert "### Review findings" not in pr_body(INCIDENT, approved())

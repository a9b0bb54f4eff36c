"""What the notifier writes: branch name, pull request title and body (pure)."""

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
from services.notifier.logic import branch_name, pr_body, pr_title

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
    assert lines[0] == f"Automated fix for incident `{INCIDENT}` (P1)."
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

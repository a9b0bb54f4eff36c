"""Review risk rules: protected paths, the assessment table, unproven fixes and the approval threshold (pure)."""

from __future__ import annotations

import pytest

from pagerpatch.git.paths import is_protected
from schemas.events import (
    ApprovalDecidedPayload,
    RiskAssessment,
    RiskLevel,
    TestRun,
)
from services.review.domain import (
    UNPROVEN,
    FixFacts,
    RiskPolicy,
    assess,
    facts_of,
    must_wait,
    needs_approval,
    refusal,
)
from tests.support.review import fix_payload

PATTERNS = ("deploy/**", "*.sql", "infra/", "Dockerfile", "secrets")


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("deploy/helm/values.yaml", True),
        ("deploy/x", True),
        ("migrations/0001_init.sql", True),
        ("schema.sql", True),
        ("infra/main.tf", True),
        ("infra/modules/net/vpc.tf", True),
        ("Dockerfile", True),
        ("secrets/prod.env", True),  # a bare folder name protects what sits under it
        ("src/deploy_helpers.py", False),
        ("infrastructure/main.tf", False),
        ("app/Dockerfile.dev", False),
        ("schema.sql.bak", False),
        ("secretsmanager.py", False),
        ("src/app.py", False),
    ],
)
def test_is_protected(path: str, protected: bool) -> None:
    assert is_protected(path, PATTERNS) is protected


@pytest.mark.parametrize(
    ("path", "patterns", "protected"),
    [
        ("deploy/a.yaml", (), False),
        ("deploy/a.yaml", ("deploy",), True),
        ("deploy/a.yaml", ("deploy/",), True),
        ("deploy/a.yaml", ("deploy/*",), True),
        ("ci/pipeline.yml", ("*.sql", "ci/**"), True),
        ("src/pricing.py", ("src/pricing.py",), True),
        ("src/pricing_test.py", ("src/pricing.py",), False),
    ],
)
def test_is_protected_pattern_forms(path: str, patterns: tuple[str, ...], protected: bool) -> None:
    assert is_protected(path, patterns) is protected


@pytest.mark.parametrize("path", ["deployment.py", "deploy.py", "deploy_notes.md"])
def test_double_star_glob_does_not_protect_sibling_names(path: str) -> None:
    assert is_protected(path, ("deploy/**",)) is False


# ---------------------------------------------------------------- assess

POLICY = RiskPolicy(protected_paths=("deploy/**", "*.sql"), max_diff_lines=400, max_files=10)


def facts(
    files: int | tuple[str, ...] = 1,
    added: int = 3,
    removed: int = 2,
    passed: bool = True,
    proved: bool = True,
    removed_tests: int = 0,
) -> FixFacts:
    """A proved fix by default: the rules about size and paths are checked on their own."""
    names = files if isinstance(files, tuple) else tuple(f"src/m{i}.py" for i in range(files))
    return FixFacts(files=names, lines_added=added, lines_removed=removed, tests_passed=passed, proved=proved,
                    removed_tests=removed_tests)  # fmt: skip


@pytest.mark.parametrize(
    ("fix", "level", "score", "reason_part"),
    [
        (facts(), RiskLevel.LOW, 0, "small change (5 lines in 1 file(s)), tests passed"),
        (facts(passed=False), RiskLevel.CRITICAL, 100, "tests did not pass"),
        (facts(files=0, added=0, removed=0), RiskLevel.CRITICAL, 100, "changes no file"),
        (facts(files=("deploy/app.yaml",)), RiskLevel.HIGH, 50, "touches protected path(s): deploy/app.yaml"),
        (facts(files=("db/0002_add.sql",)), RiskLevel.HIGH, 50, "protected path(s): db/0002_add.sql"),
        (facts(added=300, removed=101), RiskLevel.HIGH, 40, "diff of 401 lines exceeds the limit of 400"),
        (facts(added=300, removed=100), RiskLevel.MEDIUM, 20, "diff of 400 lines is over half the limit"),
        (facts(added=201, removed=0), RiskLevel.MEDIUM, 20, "diff of 201 lines is over half the limit"),
        (facts(added=200, removed=0), RiskLevel.LOW, 0, "small change (200 lines in 1 file(s))"),
        (facts(files=11), RiskLevel.HIGH, 40, "11 files changed (limit 10)"),
        (facts(files=10), RiskLevel.MEDIUM, 15, "10 files changed"),
        (facts(files=6), RiskLevel.MEDIUM, 15, "6 files changed"),
        (facts(files=5), RiskLevel.LOW, 0, "small change (5 lines in 5 file(s))"),
    ],
)
def test_assess_single_rules(fix: FixFacts, level: RiskLevel, score: int, reason_part: str) -> None:
    risk = assess(fix, POLICY)
    assert risk.level == level
    assert risk.score == score
    assert len(risk.reasons) == 1
    assert reason_part in risk.reasons[0]


@pytest.mark.parametrize(
    ("fix", "level", "score", "n_reasons"),
    [
        # level is the max over rules, scores add up
        (facts(files=("deploy/a.yaml",), added=250, removed=0), RiskLevel.HIGH, 50 + 20, 2),
        (facts(files=6, added=250, removed=0), RiskLevel.MEDIUM, 20 + 15, 2),
        (facts(files=11, added=500, removed=0), RiskLevel.HIGH, 40 + 40, 2),
        (facts(files=("deploy/a.yaml",), passed=False), RiskLevel.CRITICAL, 100 + 50, 2),
        (facts(files=0, added=0, removed=0, passed=False), RiskLevel.CRITICAL, 200, 2),
        (
            facts(files=(*[f"deploy/f{i}.yaml" for i in range(11)],), added=900, removed=0, passed=False),
            RiskLevel.CRITICAL,
            100 + 50 + 40 + 40,
            4,
        ),
    ],
)
def test_assess_combines_rules(fix: FixFacts, level: RiskLevel, score: int, n_reasons: int) -> None:
    risk = assess(fix, POLICY)
    assert risk.level == level
    assert risk.score == score
    assert len(risk.reasons) == n_reasons
    assert not any(r.startswith("small change") for r in risk.reasons)


def test_protected_reason_lists_only_protected_files_at_most_five() -> None:
    files = ("src/ok.py", *[f"deploy/f{i}.yaml" for i in range(7)])
    risk = assess(facts(files=files), POLICY)
    (reason,) = [r for r in risk.reasons if "protected" in r]
    assert reason == "touches protected path(s): " + ", ".join(f"deploy/f{i}.yaml" for i in range(5))


@pytest.mark.parametrize(
    ("policy", "fix", "level"),
    [
        (RiskPolicy(max_diff_lines=10), facts(added=11, removed=0), RiskLevel.HIGH),
        (RiskPolicy(max_diff_lines=10), facts(added=6, removed=0), RiskLevel.MEDIUM),
        (RiskPolicy(max_diff_lines=10), facts(added=5, removed=0), RiskLevel.LOW),
        (RiskPolicy(max_files=2), facts(files=3), RiskLevel.HIGH),
        (RiskPolicy(max_files=2), facts(files=2), RiskLevel.MEDIUM),
        (RiskPolicy(max_files=1), facts(files=1), RiskLevel.LOW),  # "over half" never below 1 file
        (RiskPolicy(protected_paths=()), facts(files=("deploy/a.yaml",)), RiskLevel.LOW),
    ],
)
def test_assess_uses_policy_limits(policy: RiskPolicy, fix: FixFacts, level: RiskLevel) -> None:
    assert assess(fix, policy).level == level


# ---------------------------------------------------------------- needs_approval


@pytest.mark.parametrize(
    ("level", "threshold", "needed"),
    [
        (RiskLevel.LOW, RiskLevel.HIGH, False),
        (RiskLevel.MEDIUM, RiskLevel.HIGH, False),
        (RiskLevel.HIGH, RiskLevel.HIGH, True),
        (RiskLevel.CRITICAL, RiskLevel.HIGH, True),
        (RiskLevel.LOW, RiskLevel.LOW, True),
        (RiskLevel.MEDIUM, RiskLevel.MEDIUM, True),
        (RiskLevel.LOW, RiskLevel.MEDIUM, False),
        (RiskLevel.HIGH, RiskLevel.CRITICAL, False),
        (RiskLevel.CRITICAL, RiskLevel.CRITICAL, True),
    ],
)
def test_needs_approval(level: RiskLevel, threshold: RiskLevel, needed: bool) -> None:
    risk = RiskAssessment(level=level, score=0, reasons=[])
    assert needs_approval(risk, RiskPolicy(approval_threshold=threshold)) is needed


def test_default_policy_needs_approval_for_protected_but_not_small() -> None:
    policy = RiskPolicy(protected_paths=("deploy/**",))
    assert needs_approval(assess(facts(files=("deploy/a.yaml",)), policy), policy) is True
    assert needs_approval(assess(facts(), policy), policy) is False


def _decision(channel: str, account: str | None) -> ApprovalDecidedPayload:
    return ApprovalDecidedPayload(decision="approve", decided_by="dana", channel=channel, decided_by_id=account)


def test_only_listed_slack_users_decide_and_the_cli_always_does() -> None:
    policy = RiskPolicy(slack_approvers=frozenset({"U0DANA"}))
    assert refusal(_decision("slack", "U0DANA"), policy) is None
    assert "U0MALLORY (dana) is not in policy.slack_approvers" in str(refusal(_decision("slack", "U0MALLORY"), policy))
    assert "unidentified" in str(refusal(_decision("slack", None), policy))
    assert refusal(_decision("cli", None), policy) is None
    assert refusal(_decision("api", None), RiskPolicy()) is None


def test_slack_decides_nothing_until_approvers_are_configured() -> None:
    reason = refusal(_decision("slack", "U0DANA"), RiskPolicy())
    assert reason is not None and "policy.slack_approvers" in reason and "CLI" in reason


# ---------------------------------------------------------------- unproven fixes and removed tests


@pytest.mark.parametrize(
    ("fix", "level", "score", "reasons"),
    [
        (facts(proved=False), RiskLevel.MEDIUM, 30, [UNPROVEN]),
        (facts(proved=False, files=("deploy/a.yaml",)), RiskLevel.HIGH, 50 + 30,
         ["touches protected path(s): deploy/a.yaml", UNPROVEN]),
        (facts(proved=False, added=250, removed=0), RiskLevel.MEDIUM, 20 + 30,
         ["diff of 250 lines is over half the limit", UNPROVEN]),
        # failing tests are CRITICAL and say so; "the tests pass with and without" would not be true
        (facts(proved=False, passed=False), RiskLevel.CRITICAL, 100, ["the repository's tests did not pass"]),
        (facts(proved=True), RiskLevel.LOW, 0, ["small change (5 lines in 1 file(s)), tests passed"]),
    ],
)  # fmt: skip
def test_an_unproven_fix_is_at_least_medium_and_says_why(
    fix: FixFacts, level: RiskLevel, score: int, reasons: list[str]
) -> None:
    risk = assess(fix, POLICY)
    assert (risk.level, risk.score, risk.reasons) == (level, score, reasons)


def test_the_unproven_reason_says_it_plainly() -> None:
    assert UNPROVEN == "unproven: the tests pass with and without this change, so nothing shows it fixes the failure"


@pytest.mark.parametrize(
    ("fix", "reasons"),
    [
        (facts(removed_tests=3), ["small change (5 lines in 1 file(s)), tests passed",
                                  "the revert removes 3 tests (listed in the pull request)"]),
        (facts(removed_tests=1, proved=False), [UNPROVEN, "the revert removes 1 test (listed in the pull request)"]),
    ],
)  # fmt: skip
def test_removed_tests_are_named_by_count_without_changing_the_level(fix: FixFacts, reasons: list[str]) -> None:
    risk = assess(fix, POLICY)
    assert risk.reasons == reasons
    assert risk.level == assess(facts(proved=fix.proved), POLICY).level
    assert risk.score == assess(facts(proved=fix.proved), POLICY).score


@pytest.mark.parametrize("threshold", list(RiskLevel))
def test_an_unproven_fix_always_waits_whatever_the_threshold(threshold: RiskLevel) -> None:
    policy = RiskPolicy(approval_threshold=threshold)
    unproven = facts(proved=False)
    assert must_wait(unproven, assess(unproven, policy), policy) is True
    proved = facts()
    assert must_wait(proved, assess(proved, policy), policy) is needs_approval(assess(proved, policy), policy)


@pytest.mark.parametrize(
    ("fields", "proved", "removed"),
    [
        ({}, False, 0),  # the event's default: nothing proves it
        ({"proof": "unproven", "proof_detail": "UNPROVEN: the suite passes both ways"}, False, 0),
        ({"proof": "proved", "removed_tests": ["tests/test_a.py::test_x", "tests/test_a.py::test_y"]}, True, 2),
    ],
)
def test_facts_of_reads_the_proof_and_the_removed_tests(fields: dict[str, object], proved: bool, removed: int) -> None:
    got = facts_of(fix_payload(**fields))
    assert (got.proved, got.removed_tests) == (proved, removed)


def _run(passed: bool, failed: list[str]) -> TestRun:
    return TestRun(command="pytest", passed=passed, exit_code=0 if passed else 1, duration_s=1.0, failed_tests=failed)


@pytest.mark.parametrize(
    ("base_failed", "after_failed", "baseline_failures"),
    [
        (["t::old"], ["t::old"], 1),  # the red suite was red before: judged by what the change made worse
        (["t::old", "t::bug"], ["t::old"], 1),
        (["t::old"], ["t::old", "t::new"], 0),  # a new failure: the tests did not pass
        ([], ["t::new"], 0),
        ([f"t::{i}" for i in range(50)], [f"t::{i}" for i in range(50)], 0),  # a capped list proves nothing
    ],
)
def test_failures_already_failing_at_the_base_do_not_count_against_a_proved_fix(
    base_failed: list[str], after_failed: list[str], baseline_failures: int
) -> None:
    fix = fix_payload(
        tests=_run(False, after_failed),
        base_tests=_run(False, base_failed),
        proof="proved",
        fixed_tests=["t::bug"],
        files_changed=["shop/pricing.py"],
        lines_added=1,
    )
    facts = facts_of(fix)
    assert facts.baseline_failures == baseline_failures
    risk = assess(facts, RiskPolicy())
    if baseline_failures:
        assert facts.tests_passed and risk.level == RiskLevel.MEDIUM
        assert any("already failing at the base commit still fail" in r for r in risk.reasons)
    else:
        assert not facts.tests_passed and risk.level == RiskLevel.CRITICAL

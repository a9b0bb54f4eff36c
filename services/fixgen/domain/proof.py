"""Whether a revert is proved, unproven or refused: the test run at the base commit against the run after it.

A revert is proved only when a check that fails at the base passes after it: a test by id, the suite as a whole
when the runner gives no per-test results, or the reproduction raising the alert's exception type at the base and
not after. Tests failing at the base are the baseline: only new failures count against a revert, and they refuse
it by name. When the suite passes both ways the revert is unproven, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pagerpatch.sandbox import TestReport, failure_list

__all__ = ["ProofKind", "ReproductionCheck", "Verdict", "judge", "removed_tests"]

ProofKind = Literal["proved", "unproven", "refused"]
_SHOWN = 3  # test ids named in one message


@dataclass(frozen=True)
class ReproductionCheck:
    """What calling the failing function with its captured arguments showed (or why it could not be done)."""

    proves: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The proof of one revert: its kind, a sentence saying why, and the tests behind it."""

    kind: ProofKind
    detail: str
    fixed_tests: tuple[str, ...] = ()
    new_failures: tuple[str, ...] = ()
    by_reproduction: bool = False


def _names(tests: Sequence[str]) -> str:
    shown = ", ".join(tests[:_SHOWN])
    return shown + (f" (and {len(tests) - _SHOWN} more)" if len(tests) > _SHOWN else "")


def _refused(detail: str, new: Sequence[str] = ()) -> Verdict:
    return Verdict("refused", detail, new_failures=tuple(new))


def _per_test(short: str, base: TestReport, after: TestReport) -> Verdict | None:
    """The verdict from per-test results (both runs have them); None when it is left to the reproduction."""
    assert base.tests is not None and after.tests is not None
    base_failed = set(base.tests.failed)
    new = [test for test in after.tests.failed if test not in base_failed]
    if new:
        return _refused(f"reverting {short} breaks tests that do not fail at the base commit: {failure_list(new)}", new)
    if not after.result.passed and base.result.passed:
        return _refused(
            f"the test command fails with {short} reverted (exit {after.result.exit_code}) although no test does: "
            f"{after.result.summary}"
        )
    fixed = [test for test in base.tests.failed if after.tests.outcomes.get(test) == "passed"]
    if fixed:
        return Verdict(
            "proved",
            f"{len(fixed)} failing at the base commit pass with {short} reverted: {_names(fixed)}",
            fixed_tests=tuple(fixed),
        )
    return None


def _suite_level(short: str, base: TestReport, after: TestReport) -> Verdict | None:
    """The verdict from exit codes alone (the runner gave no per-test results)."""
    if not after.result.passed:
        names = f" ({failure_list(after.failed_tests)})" if after.failed_tests else ""
        if base.result.passed or base.result.timed_out:
            return _refused(f"the tests fail with {short} reverted: {after.result.summary}{names}", after.failed_tests)
        return _refused(
            f"the tests still fail with {short} reverted: {after.result.summary}{names} (they fail at the base "
            "commit too, and without per-test results new failures cannot be told from old ones)"
        )
    if not base.result.passed and not base.result.timed_out:
        return Verdict(
            "proved",
            f"the test suite fails at the base commit ({base.result.summary}) and passes with {short} reverted "
            "(suite-level: the runner gave no per-test results)",
        )
    return None


def _unproven(short: str, base: TestReport) -> str:
    if base.result.timed_out:
        return f"the tests time out at the base commit, so nothing compares them with {short} reverted"
    failing = base.tests.failed if base.tests else []
    if failing:
        return (
            f"no test that fails at the base commit passes with {short} reverted (the baseline, ignored: "
            f"{failure_list(failing, verb='fail at the base too')})"
        )
    return f"the test suite passes at the base commit and with {short} reverted, so no test shows what it fixes"


def judge(sha: str, base: TestReport, after: TestReport, reproduction: ReproductionCheck | None = None) -> Verdict:
    """The verdict on reverting `sha`: `base` is the test command at the base commit, `after` with the revert."""
    short = sha[:12]
    if after.result.timed_out:
        return _refused(f"the tests time out with {short} reverted: {after.result.summary}")
    per_test = base.tests is not None and after.tests is not None and not base.result.timed_out
    verdict = _per_test(short, base, after) if per_test else _suite_level(short, base, after)
    if verdict is not None and verdict.kind == "refused":
        return verdict
    if reproduction is not None and reproduction.proves:
        if verdict is None:
            return Verdict("proved", reproduction.detail, by_reproduction=True)
        detail = f"{verdict.detail}; {reproduction.detail}"
        return Verdict("proved", detail, fixed_tests=verdict.fixed_tests, by_reproduction=True)
    if verdict is not None:
        return verdict
    why_not = f"; no reproduction: {reproduction.detail}" if reproduction is not None else ""
    return Verdict("unproven", f"UNPROVEN: {_unproven(short, base)}{why_not}")


def removed_tests(base: TestReport, after: TestReport, removed_defs: Sequence[str]) -> list[str]:
    """Tests the revert takes away: present at the base and absent after (per-test results), else from the diff."""
    if base.tests is not None and after.tests is not None:
        return [test for test in base.tests.outcomes if test not in after.tests.outcomes]
    return list(removed_defs)

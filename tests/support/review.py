"""The fix review's tests gate: a validated revert of a KeyError in `shop`, its tests passing."""

from __future__ import annotations

from schemas.events import DiagnosisReadyPayload, FixValidatedPayload, TestRun

SHA = "a" * 40


def fix_payload(*, base_commit: str = SHA, summary: str = "", **fields: object) -> FixValidatedPayload:
    """The fix.validated payload of a one-attempt revert on `base_commit`; `fields` set any other field of it."""
    diagnosis = DiagnosisReadyPayload(repo="shop", base_commit=base_commit, root_cause="KeyError", confidence=0.9)
    tests = TestRun(command="pytest", passed=True, exit_code=0, summary=summary, duration_s=1.0)
    return FixValidatedPayload.model_validate(
        {"repo": "shop", "base_commit": base_commit, "strategy": "revert-suspect", "patch": "",
         "commit_message": "Revert", "attempts": 1, "tests": tests, "diagnosis": diagnosis, **fields}
    )  # fmt: skip

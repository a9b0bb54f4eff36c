"""Diagnosis decisions that need no I/O."""

from __future__ import annotations

from schemas.events import DiagnosisReadyPayload, Severity


def without_trace(repo: str, base_commit: str, title: str, severity: Severity, why: str) -> DiagnosisReadyPayload:
    """The honest diagnosis when the stack trace cannot be used: no suspect, no confidence."""
    return DiagnosisReadyPayload(
        repo=repo,
        base_commit=base_commit,
        root_cause=f"No root cause found: {why}. A human needs to look at this incident.",
        suspect_commit=None,
        evidence=[],
        confidence=0.0,
        strategy="stacktrace-blame",
        title=title[:500],
        severity=severity,
    )

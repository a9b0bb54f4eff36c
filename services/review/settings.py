"""Review's view of the settings tree."""

from __future__ import annotations

from pagerpatch.settings import Settings
from schemas.events import RiskLevel
from services.review.logic import RiskPolicy


def risk_policy(s: Settings) -> RiskPolicy:
    return RiskPolicy(
        protected_paths=tuple(s.policy.protected_paths),
        max_diff_lines=s.policy.max_diff_lines,
        max_files=s.policy.max_files,
        approval_threshold=RiskLevel(s.policy.approval_threshold),
    )

"""Review's view of the settings tree."""

from __future__ import annotations

from pagerpatch.llm.config import review_policy
from pagerpatch.settings import Settings
from schemas.events import RiskLevel
from services.review.domain import RiskPolicy


def risk_policy(s: Settings) -> RiskPolicy:
    # `policy:` from the settings, overridden by policies.yaml (llm.config_dir) where that file sets a value.
    policy = review_policy(s)
    return RiskPolicy(
        protected_paths=tuple(policy.protected_paths),
        max_diff_lines=policy.max_diff_lines,
        max_files=policy.max_files,
        approval_threshold=RiskLevel(policy.approval_threshold),
        slack_approvers=frozenset(policy.slack_approvers),
    )

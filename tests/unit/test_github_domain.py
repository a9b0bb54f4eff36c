"""The notifier's pure pull request decisions: reviewers (catalog owners, CODEOWNERS) and what a pr.event ends as;
and the GitHub error classification (rate limits -> wait, 5xx -> unavailable, 401/404 -> rejected)."""

from __future__ import annotations

from github import GithubException

from pagerpatch.kernel.errors import Transient
from pagerpatch.scm import ScmRejected, ScmUnavailable
from pagerpatch.scm.github import classify, rate_limit_wait
from pagerpatch.settings import ServiceEntry
from services.notifier.domain import catalog_owners, codeowners_for, pr_outcome, split_reviewers

CODEOWNERS = """# comments are ignored
*            @everyone
*.md         @docs-team
/shop/       @alice @acme/payments
docs/        @writers
apps/web/*.ts @frontend
"""


def test_codeowners_last_matching_rule_wins_per_path() -> None:
    assert codeowners_for(CODEOWNERS, ["shop/cart.py"]) == ["@alice", "@acme/payments"]
    assert codeowners_for(CODEOWNERS, ["shop/README.md"]) == ["@alice", "@acme/payments"]  # later rule wins
    assert codeowners_for(CODEOWNERS, ["README.md", "lib/x.py"]) == ["@docs-team", "@everyone"]
    assert codeowners_for(CODEOWNERS, ["sub/docs/guide.txt", "apps/web/a.ts"]) == ["@writers", "@frontend"]
    assert codeowners_for(CODEOWNERS, ["other/shop/x.py"]) == ["@everyone"]  # /shop/ is anchored
    assert codeowners_for("", ["x.py"]) == []


def test_owners_split_into_users_and_teams() -> None:
    assert split_reviewers(["@alice", "bob", "@acme/payments", "dev@example.com", "@alice"]) == (
        ("alice", "bob"),
        ("payments",),
    )
    catalog = {"checkout": ServiceEntry(repo="shop", owners=["@alice"]), "cart": ServiceEntry(owners=["@bob"]),
               "search": ServiceEntry(repo="search", owners=["@carol"])}  # fmt: skip
    assert catalog_owners("shop", ["cart"], catalog) == ["@bob", "@alice"]


def test_pr_outcomes() -> None:
    assert pr_outcome("merged", 7, "bob") == ("resolved", "fix merged (pull request #7 merged by bob)")
    assert pr_outcome("closed", 7, "") == ("pr_closed", "pull request #7 closed without merging")
    assert pr_outcome("reopened", 7, "bob") is None and pr_outcome("commented", None, "") is None


def test_rate_limits_and_errors_are_classified() -> None:
    assert rate_limit_wait(429, {"retry-after": "12"}, "", now=0) == 12
    assert rate_limit_wait(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1090"}, "", now=1000) == 90
    assert rate_limit_wait(403, {}, "You have exceeded a secondary rate limit", now=0) == 60
    assert rate_limit_wait(403, {}, "Resource not accessible by integration", now=0) is None
    assert rate_limit_wait(429, {"Retry-After": "999999"}, "", now=0) == 3600
    limited = classify(GithubException(429, {"message": "slow down"}, {"Retry-After": "5"}), "open")
    assert isinstance(limited, Transient) and limited.retry_after_s == 5
    assert isinstance(classify(GithubException(502, {"message": "Bad Gateway"}, {}), "open"), ScmUnavailable)
    bad = classify(GithubException(401, {"message": "Bad credentials"}, {}), "open")
    assert isinstance(bad, ScmRejected) and "401 Bad credentials" in bad.reason
    forbidden = classify(GithubException(403, {"message": "Resource not accessible by integration"}, {}), "open")
    assert isinstance(forbidden, ScmRejected)
    invalid = classify(GithubException(422, {"message": "Validation Failed", "errors": [
        {"resource": "PullRequest", "field": "base", "code": "invalid"}]}, {}), "open")  # fmt: skip
    assert isinstance(invalid, ScmRejected) and "PullRequest base invalid" in invalid.reason


def test_a_network_failure_mid_call_waits_and_a_bad_url_does_not() -> None:
    import pytest
    import requests

    from pagerpatch.scm.github import translated

    for cut in (requests.ConnectionError("reset"), requests.Timeout("slow"),
                requests.exceptions.ChunkedEncodingError("answer cut off")):  # fmt: skip
        with pytest.raises(ScmUnavailable, match="github: create pull: "), translated("create pull"):
            raise cut
    with pytest.raises(requests.exceptions.InvalidURL), translated("create pull"):  # a configuration error: loud
        raise requests.exceptions.InvalidURL("no host")

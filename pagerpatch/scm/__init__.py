"""Source control: where pull requests go. `Scm` is the port; `LocalGitScm` the default (a local bare remote);
`GithubScm` (pagerpatch.scm.github, imported where used) pushes through the Git Data API and opens pull requests."""

from __future__ import annotations

from pagerpatch.scm.local import LocalGitScm
from pagerpatch.scm.port import (
    HostedPullRequest,
    PullRequestHost,
    PullRequestSpec,
    PushedBranch,
    Scm,
    ScmRejected,
    ScmUnavailable,
)

__all__ = [
    "HostedPullRequest",
    "LocalGitScm",
    "PullRequestHost",
    "PullRequestSpec",
    "PushedBranch",
    "Scm",
    "ScmRejected",
    "ScmUnavailable",
]

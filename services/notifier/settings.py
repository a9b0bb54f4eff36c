"""Notifier's view of the settings tree: which SCM pull requests go to (GitHub for repositories with a `github:`
section when GitHub is configured, else the local git remote)."""

from __future__ import annotations

from pagerpatch.scm import LocalGitScm, Scm
from pagerpatch.settings import Settings
from services.notifier.forge import ForgePullRequests
from services.notifier.ports import Outbox


def make_scm(s: Settings) -> Scm:
    return LocalGitScm(s.state_dir)


def make_forge(s: Settings, outbox: Outbox) -> ForgePullRequests | None:
    """GitHub when a token or App is configured (PyGithub is imported only then)."""
    if not s.github.enabled:
        return None
    from pagerpatch.scm.github import GithubScm

    return ForgePullRequests(
        host=GithubScm(s.github), outbox=outbox, catalog=s.service_catalog, default_reviewers=tuple(s.github.reviewers)
    )

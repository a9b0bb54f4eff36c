"""The pull request on a forge (GitHub), exactly once: pushed and opened through the outbox.

The side effect is keyed (incident, "github.pr", owner/name). A crash after GitHub opened the pull request and
before the outbox recorded it is repaired by the lookup: the pull request is found by its head branch (and its
labels and reviewers completed). Rate limits wait (`Transient`), 5xx and timeouts count against the "github"
breaker and wait; a refusal (401, 404, no access) ends as a `Failed` the notifier reports, never a retry loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pagerpatch.kernel.breakers import Breakers
from pagerpatch.scm import HostedPullRequest, PullRequestHost, PullRequestSpec, ScmRejected, ScmUnavailable
from pagerpatch.settings import RepoConfig, ServiceEntry
from schemas.events import FixApprovedPayload
from services.notifier import domain
from services.notifier.outbox import Failed, Rejected, Remote, perform_once
from services.notifier.ports import Outbox

T = TypeVar("T")
KIND = "github.pr"
FAILPOINT = "notifier.after_github"
BREAKER = "github"


@dataclass(frozen=True)
class OnForge:
    """The pull request the forge has: its number, url and head commit."""

    number: int
    url: str
    head_commit: str


@dataclass(frozen=True)
class ForgePullRequests:
    """Pull requests on the forge for repositories with a `github:` section (the others use the notifier's Scm)."""

    host: PullRequestHost
    outbox: Outbox
    catalog: Mapping[str, ServiceEntry] = field(default_factory=dict)
    default_reviewers: tuple[str, ...] = ()

    async def open(
        self,
        *,
        incident_id: uuid.UUID,
        repo: RepoConfig,
        approved: FixApprovedPayload,
        branch: str,
        title: str,
        body: str,
        message: str,
        when: datetime,
        breakers: Breakers,
    ) -> OnForge | Failed:
        """Push the branch and open the pull request once; `Failed` when the forge refused for good."""
        assert repo.github is not None
        gh, fix, host = repo.github, approved.fix, self.host

        async def call(fn: Callable[[], T]) -> T:
            try:
                return await breakers.call(BREAKER, lambda: asyncio.to_thread(fn), failures=(ScmUnavailable,))
            except ScmRejected as exc:
                raise Rejected(exc.reason) from exc

        async def spec() -> PullRequestSpec:
            owners = await self._owners(
                repo, fix.files_changed, lambda: call(lambda: host.codeowners(gh.repo, fix.base_commit))
            )
            users, teams = domain.split_reviewers(owners)
            return PullRequestSpec(
                repo=gh.repo, branch=branch, base=gh.base or repo.default_branch, title=title, body=body,
                draft=gh.draft, labels=tuple(gh.labels), reviewers=users, team_reviewers=teams,
            )  # fmt: skip

        async def lookup() -> Remote | None:
            found = await call(lambda: host.find_pull_request(gh.repo, branch))
            if found is None:
                return None
            wanted = await spec()  # finish what the interrupted attempt may not have: labels and reviewers
            return _remote(await call(lambda: host.open_pull_request(wanted)))

        async def create() -> Remote:
            await call(lambda: host.push_fix(repo, branch=branch, base_commit=fix.base_commit, patch=fix.patch,
                                             message=message, when=when))  # fmt: skip
            wanted = await spec()
            return _remote(await call(lambda: host.open_pull_request(wanted)))

        result = await perform_once(
            self.outbox, incident_id, KIND, gh.repo, lookup=lookup, create=create, failpoint=FAILPOINT
        )
        if isinstance(result, Failed):
            return result
        return OnForge(number=int(result.id), url=result.url, head_commit=str(result.detail["head_commit"]))

    async def _owners(
        self, repo: RepoConfig, files: list[str], codeowners: Callable[[], Awaitable[str | None]]
    ) -> list[str]:
        """Reviewers: the catalog's owners of the repository's services, else CODEOWNERS, else the default."""
        owners = domain.catalog_owners(repo.name, repo.services, self.catalog)
        if not owners:
            text = await codeowners()
            owners = domain.codeowners_for(text, files) if text else []
        return owners or list(self.default_reviewers)


def _remote(pr: HostedPullRequest) -> Remote:
    return Remote(id=str(pr.number), url=pr.url, detail={"head_commit": pr.head_commit, "number": pr.number})

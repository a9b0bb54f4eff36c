"""GitHub as the forge (PyGithub): the fix branch through the Git Data API, then the pull request.

The branch: the patch is applied to the base commit in a scratch clone (as `LocalGitScm` does), the changed files
become blobs, a tree on the base commit's tree, a commit with the approving event's dates and a ref. The pull
request: looked up by head branch before it is created; "Reference already exists" and "A pull request already
exists" (422) are success. Every failure is classified: rate limits (403/429 with Retry-After or
X-RateLimit-Reset) are `Transient` with the wait, 5xx and connection errors `ScmUnavailable` (the breaker counts
them), 401/403/404/422 `ScmRejected` with the reason. PyGithub's own retries and sleeps are off: waiting is the
runtime's job (the message waits in place, nothing is dead-lettered).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubIntegration, InputGitAuthor, InputGitTreeElement
from github.PullRequest import PullRequest as GhPullRequest
from github.Repository import Repository

from pagerpatch.git.workspace import GitIdentity, git
from pagerpatch.kernel.errors import Transient
from pagerpatch.scm.port import HostedPullRequest, PullRequestSpec, PushedBranch, ScmRejected, ScmUnavailable
from pagerpatch.settings import GithubSettings, RepoConfig

log = logging.getLogger(__name__)

CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
RATE_LIMIT_DEFAULT_WAIT_S = 60.0
RATE_LIMIT_MAX_WAIT_S = 3600.0


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def rate_limit_wait(status: int, headers: Mapping[str, Any] | None, message: str, now: float) -> float | None:
    """Seconds to wait when this answer is a rate limit (primary or secondary), else None.

    GitHub answers 429, or 403 with `Retry-After`, `X-RateLimit-Remaining: 0` or a rate-limit message.
    """
    retry_after = _header(headers, "Retry-After")
    remaining = _header(headers, "X-RateLimit-Remaining")
    limited = status == 429 or (
        status == 403 and (retry_after is not None or remaining == "0" or "rate limit" in message.lower())
    )
    if not limited:
        return None
    if retry_after is not None and retry_after.strip().isdigit():
        wait = float(retry_after)
    else:
        reset = _header(headers, "X-RateLimit-Reset")
        wait = float(reset) - now if reset and reset.strip().isdigit() else RATE_LIMIT_DEFAULT_WAIT_S
    return min(max(wait, 1.0), RATE_LIMIT_MAX_WAIT_S)


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [str(data.get("message") or exc.message or "")]
    for err in data.get("errors") or []:
        if isinstance(err, dict) and err.get("message"):
            parts.append(str(err["message"]))
        elif isinstance(err, dict) and err.get("code"):
            parts.append(f"{err.get('resource', '')} {err.get('field', '')} {err['code']}".strip())
    return "; ".join(p for p in parts if p)


def classify(exc: GithubException, what: str, now: float | None = None) -> Exception:
    """The error to raise for a GitHub error answer (see the module docstring)."""
    message = _message(exc)
    wait = rate_limit_wait(exc.status, exc.headers, message, time.time() if now is None else now)
    if wait is not None:
        return Transient(
            f"github: {what}: rate limited ({exc.status} {message}); waiting {wait:.0f}s", retry_after_s=wait
        )
    if exc.status >= 500:
        return ScmUnavailable(f"github: {what}: {exc.status} {message}")
    if exc.status == 401:
        return ScmRejected(f"github: {what}: 401 {message or 'Bad credentials'} (check PAGERPATCH_GITHUB_TOKEN)")
    if exc.status in (403, 404):
        return ScmRejected(f"github: {what}: {exc.status} {message or 'no access'} (does the token/App have access?)")
    return ScmRejected(f"github: {what}: {exc.status} {message}")


_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the answer was cut off
    requests.exceptions.ContentDecodingError,
)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Run GitHub calls, raising the classified error for any failure."""
    try:
        yield
    except GithubException as exc:
        raise classify(exc, what) from exc
    except _NETWORK_ERRORS as exc:  # the network failed us mid-call: wait (the outbox looks the effect up first)
        raise ScmUnavailable(f"github: {what}: {type(exc).__name__}: {exc}") from exc


def already_exists(exc: GithubException) -> bool:
    return exc.status == 422 and "already exists" in _message(exc).lower()


class GithubScm:
    """Pull requests on GitHub (or GitHub Enterprise at `api_url`), by token or as a GitHub App installation."""

    provider = "github"

    def __init__(self, settings: GithubSettings, identity: GitIdentity | None = None) -> None:
        if not settings.enabled:
            raise ValueError("GitHub is not configured (no token and no App)")
        self.settings = settings
        self.identity = identity or GitIdentity()
        self._clients: dict[str, Github] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ clients
    def _kwargs(self) -> dict[str, Any]:
        s = self.settings
        return {
            "base_url": s.api_url.rstrip("/"),
            "timeout": max(1, round(s.timeout_s)),
            "retry": None,  # waiting is the runtime's job (Transient / breaker), never a sleeping worker thread
            "seconds_between_requests": None,
            "seconds_between_writes": s.write_interval_s or None,
        }

    def client(self, repo: str) -> Github:
        """A client for `owner/name`: the token's, or the App's installation on that owner (tokens refreshed)."""
        owner = repo.split("/", 1)[0]
        key = "token" if not self.settings.uses_app else (str(self.settings.installation_id or "") or owner)
        with self._lock:
            cached = self._clients.get(key)
            if cached is not None:
                return cached
        if not self.settings.uses_app:
            assert self.settings.token is not None
            gh = Github(auth=Auth.Token(self.settings.token.get_secret_value()), **self._kwargs())
        else:
            app = Auth.AppAuth(str(self.settings.app_id), self.settings.private_key())
            installation = self.settings.installation_id
            if installation is None:
                with translated(f"find the App's installation on {repo}"):
                    integration = GithubIntegration(auth=app, **self._kwargs())
                    installation = integration.get_repo_installation(owner, repo.split("/", 1)[1]).id
            gh = Github(auth=app.get_installation_auth(installation), **self._kwargs())
        with self._lock:
            return self._clients.setdefault(key, gh)

    def _repo(self, repo: str) -> Repository:
        with translated(f"get repository {repo}"):
            return self.client(repo).get_repo(repo)

    # ------------------------------------------------------------------ the branch
    def push_fix(
        self, repo: RepoConfig, *, branch: str, base_commit: str, patch: str, message: str, when: datetime
    ) -> PushedBranch:
        """Apply `patch` on `base_commit` and make `branch` point at that commit on GitHub (idempotently)."""
        if repo.github is None:
            raise ScmRejected(f"repo {repo.name!r} has no `github:` section")
        target = repo.github.repo
        with tempfile.TemporaryDirectory(prefix="pagerpatch-gh-") as tmp:
            changes, local_head = self._apply_locally(repo, Path(tmp), base_commit, patch, message, when)
            gh = self._repo(target)
            ref = self._ref_sha(gh, branch)
            if ref == local_head:  # a retry after the ref was written: nothing to do
                return self._pushed(gh, branch, ref, already_there=True)
            with translated(f"read base commit {base_commit[:12]} in {target}"):
                base = gh.get_git_commit(base_commit)
            elements = [self._element(gh, Path(tmp) / "work", change) for change in changes]
            stamp = when.isoformat()
            who = InputGitAuthor(self.identity.name, self.identity.email, stamp)
            with translated(f"write the fix commit to {target}"):
                tree = gh.create_git_tree(elements, base_tree=base.tree)
                commit = gh.create_git_commit(message, tree, [base], author=who, committer=who)
            if ref == commit.sha:
                return self._pushed(gh, branch, commit.sha, already_there=True)
            self._set_ref(gh, branch, commit.sha, exists=ref is not None)
        return self._pushed(gh, branch, commit.sha, already_there=False)

    def _apply_locally(
        self, repo: RepoConfig, tmp: Path, base_commit: str, patch: str, message: str, when: datetime
    ) -> tuple[list[tuple[str, str, str]], str]:
        """The patch applied in a scratch clone: the changed paths as (status, mode, path) and the local commit."""
        work = tmp / "work"
        (tmp / "fix.patch").write_text(patch)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S%z")
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        git(tmp, "init", "--quiet", str(work))
        git(work, "fetch", "--quiet", repo.location(), "+refs/heads/*:refs/remotes/source/*")
        git(work, "checkout", "--quiet", "--detach", base_commit)
        git(work, "apply", "--index", "--whitespace=nowarn", str(tmp / "fix.patch"))
        git(work, *self.identity.config_args(), "commit", "--quiet", "--no-verify", "-m", message, env=env)
        head = git(work, "rev-parse", "HEAD").strip()
        raw = git(work, "diff-tree", "-r", "--no-renames", "--raw", "-z", base_commit, head)
        fields = raw.split("\0")
        changes = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            if not meta.startswith(":"):
                continue
            _old_mode, new_mode, _old, _new, status = meta[1:].split()
            changes.append((status, new_mode, path))
        return changes, head

    def _element(self, gh: Repository, work: Path, change: tuple[str, str, str]) -> InputGitTreeElement:
        status, mode, path = change
        if status == "D":
            return InputGitTreeElement(path, "100644", "blob", sha=None)
        file = work / path
        data = os.readlink(file).encode() if mode == "120000" else file.read_bytes()
        with translated(f"upload {path}"):
            blob = gh.create_git_blob(base64.b64encode(data).decode(), "base64")
        return InputGitTreeElement(path, mode, "blob", sha=blob.sha)

    def _ref_sha(self, gh: Repository, branch: str) -> str | None:
        with translated(f"read branch {branch}"):
            try:
                return str(gh.get_git_ref(f"heads/{branch}").object.sha)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise

    def _set_ref(self, gh: Repository, branch: str, sha: str, *, exists: bool) -> None:
        if not exists:
            with translated(f"create branch {branch}"):
                try:
                    gh.create_git_ref(f"refs/heads/{branch}", sha)
                    return
                except GithubException as exc:
                    if not already_exists(exc):  # "Reference already exists": an earlier attempt made it
                        raise
            if self._ref_sha(gh, branch) == sha:
                return
        with translated(f"move branch {branch}"):  # ours (pagerpatch/<incident>): an interrupted older attempt
            gh.get_git_ref(f"heads/{branch}").edit(sha, force=True)

    def _pushed(self, gh: Repository, branch: str, sha: str, *, already_there: bool) -> PushedBranch:
        return PushedBranch(
            remote=gh.full_name,
            branch=branch,
            head_commit=sha,
            url=f"{gh.html_url}/tree/{branch}",
            already_there=already_there,
        )

    # ------------------------------------------------------------------ the pull request
    def find_pull_request(self, repo: str, branch: str) -> HostedPullRequest | None:
        owner = repo.split("/", 1)[0]
        gh = self._repo(repo)
        with translated(f"look up the pull request for {branch}"):
            for pr in gh.get_pulls(state="all", head=f"{owner}:{branch}"):
                return _hosted(pr)
        return None

    def open_pull_request(self, spec: PullRequestSpec) -> HostedPullRequest:
        gh = self._repo(spec.repo)
        owner = spec.repo.split("/", 1)[0]
        with translated(f"open the pull request for {spec.branch}"):
            found = next(iter(gh.get_pulls(state="all", head=f"{owner}:{spec.branch}")), None)
            if found is None:
                try:
                    found = gh.create_pull(
                        base=spec.base, head=spec.branch, title=spec.title, body=spec.body, draft=spec.draft
                    )
                except GithubException as exc:
                    if not already_exists(exc):  # "A pull request already exists for owner:branch."
                        raise
                    found = next(iter(gh.get_pulls(state="all", head=f"{owner}:{spec.branch}")))
            if spec.labels:
                found.add_to_labels(*spec.labels)
        self._request_reviews(found, spec)
        return _hosted(found)

    def _request_reviews(self, pr: GhPullRequest, spec: PullRequestSpec) -> None:
        if not (spec.reviewers or spec.team_reviewers):
            return
        try:
            with translated(f"request reviews on #{pr.number}"):
                pr.create_review_request(reviewers=list(spec.reviewers), team_reviewers=list(spec.team_reviewers))
        except ScmRejected as exc:  # an unknown or ineligible reviewer (the author, no access) does not undo the PR
            log.warning("pull request #%s: reviewers not requested: %s", pr.number, exc)

    def codeowners(self, repo: str, ref: str) -> str | None:
        gh = self._repo(repo)
        for path in CODEOWNERS_PATHS:
            with translated(f"read {path}"):
                try:
                    content = gh.get_contents(path, ref=ref)
                except GithubException as exc:
                    if exc.status == 404:
                        continue
                    raise
            if not isinstance(content, list):
                return content.decoded_content.decode("utf-8", "replace")
        return None


def _hosted(pr: GhPullRequest) -> HostedPullRequest:
    return HostedPullRequest(
        number=pr.number, url=pr.html_url, head_commit=pr.head.sha, state=pr.state, merged=pr.merged_at is not None
    )

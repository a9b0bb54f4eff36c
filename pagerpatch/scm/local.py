"""The local Scm: pull requests as branches of a bare git remote under PAGERPATCH_HOME (the default provider).

Every operation is idempotent: the fix commit is built with dates taken from the approving event, so a
retry produces the very same commit sha, and a branch already at that sha is left alone.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from pagerpatch.git.workspace import GitIdentity, git
from pagerpatch.scm.port import PushedBranch
from pagerpatch.settings import RepoConfig


class LocalGitScm:
    """Pull requests as branches pushed to a bare repository on this machine (records live in Postgres)."""

    provider = "local-git"

    def __init__(self, state_dir: Path, identity: GitIdentity | None = None) -> None:
        self.root = state_dir / "scm"
        self.identity = identity or GitIdentity()

    def remote_for(self, repo: RepoConfig) -> Path:
        return Path(repo.remote) if repo.remote else self.root / "remotes" / f"{repo.name}.git"

    def ensure_remote(self, repo: RepoConfig) -> Path:
        remote = self.remote_for(repo)
        if not (remote / "HEAD").exists():
            remote.parent.mkdir(parents=True, exist_ok=True)
            git(remote.parent, "clone", "--quiet", "--bare", repo.location(), str(remote))
        return remote

    def push_fix(
        self,
        repo: RepoConfig,
        *,
        branch: str,
        base_commit: str,
        patch: str,
        message: str,
        when: datetime,
    ) -> PushedBranch:
        """Apply `patch` on `base_commit`, commit deterministically and push `branch` to the remote."""
        remote = self.ensure_remote(repo)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S%z")
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        ident = self.identity.config_args()
        with tempfile.TemporaryDirectory(prefix="pagerpatch-pr-") as tmp:
            work = Path(tmp) / "work"
            patch_file = Path(tmp) / "fix.patch"
            patch_file.write_text(patch)
            git(Path(tmp), "init", "--quiet", str(work))
            git(work, "fetch", "--quiet", repo.location(), "+refs/heads/*:refs/remotes/source/*")
            git(work, "checkout", "--quiet", "--detach", base_commit)
            git(work, "apply", "--index", "--whitespace=nowarn", str(patch_file))
            git(work, *ident, "commit", "--quiet", "--no-verify", "-m", message, env=env)
            head = git(work, "rev-parse", "HEAD").strip()
            existing = git(work, "ls-remote", str(remote), f"refs/heads/{branch}").strip()
            current = existing.split()[0] if existing else ""
            if current != head:
                git(work, "push", "--quiet", "--force", str(remote), f"HEAD:refs/heads/{branch}")
        return PushedBranch(
            remote=str(remote),
            branch=branch,
            head_commit=head,
            url=f"file://{remote}?branch={branch}",
            already_there=current == head,
        )

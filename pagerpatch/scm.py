"""Source control: where pull requests go. The default is a local bare git remote under PAGERPATCH_HOME.

Every operation is idempotent: the fix commit is built with dates taken from the approving event, so a
retry produces the very same commit sha, and a branch already at that sha is left alone.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pagerpatch.settings import RepoConfig

BOT_NAME = "pagerpatch"
BOT_EMAIL = "pagerpatch@localhost"


class ScmError(Exception):
    pass


@dataclass(frozen=True)
class PushedBranch:
    remote: str
    branch: str
    head_commit: str
    url: str
    already_there: bool


def _git(cwd: Path | None, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    cmd = ["git", "-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}", "-c", "commit.gpgsign=false",
           *args]  # fmt: skip
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "GIT_TERMINAL_PROMPT": "0", "LANG": "C"}
    proc = subprocess.run(
        cmd, cwd=cwd, env={**base_env, **(env or {})}, input=stdin, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise ScmError(f"git {' '.join(args[:3])} failed: {proc.stderr.strip()[:2000]}")
    return proc.stdout.strip()


class LocalGitScm:
    """Pull requests as branches pushed to a bare repository on this machine (records live in Postgres)."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "scm"

    def remote_for(self, repo: RepoConfig) -> Path:
        return Path(repo.remote) if repo.remote else self.root / "remotes" / f"{repo.name}.git"

    def ensure_remote(self, repo: RepoConfig) -> Path:
        remote = self.remote_for(repo)
        if not (remote / "HEAD").exists():
            remote.parent.mkdir(parents=True, exist_ok=True)
            _git(None, "clone", "--quiet", "--bare", repo.location(), str(remote))
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
        with tempfile.TemporaryDirectory(prefix="pagerpatch-pr-") as tmp:
            work = Path(tmp) / "work"
            _git(None, "init", "--quiet", str(work))
            _git(work, "fetch", "--quiet", repo.location(), "+refs/heads/*:refs/remotes/source/*")
            _git(work, "checkout", "--quiet", "--detach", base_commit)
            _git(work, "apply", "--index", "--whitespace=nowarn", "-", stdin=patch)
            _git(work, "commit", "--quiet", "--no-verify", "-m", message, env=env)
            head = _git(work, "rev-parse", "HEAD")
            existing = _git(work, "ls-remote", str(remote), f"refs/heads/{branch}")
            current = existing.split()[0] if existing else ""
            if current != head:
                _git(work, "push", "--quiet", "--force", str(remote), f"HEAD:refs/heads/{branch}")
        return PushedBranch(
            remote=str(remote),
            branch=branch,
            head_commit=head,
            url=f"file://{remote}?branch={branch}",
            already_there=current == head,
        )

    def branch_head(self, repo: RepoConfig, branch: str) -> str | None:
        remote = self.remote_for(repo)
        if not remote.exists():
            return None
        out = _git(None, "ls-remote", str(remote), f"refs/heads/{branch}")
        return out.split()[0] if out else None

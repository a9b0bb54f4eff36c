"""Cached clones of the repositories pagerpatch works on, and per-incident worktrees made from them."""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pagerpatch.git.workspace import HEX_SHA, GitError, commit_exists, git, resolve
from pagerpatch.settings import RepoConfig

CLONE_TIMEOUT_S = 900.0  # first clones and fetches of big repositories take longer than local commands
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


class Workspaces:
    """Cached clones under `root/cache/<repo>.git` and per-incident worktrees under `root/worktrees/`."""

    def __init__(self, root: Path, *, clone_timeout_s: float = CLONE_TIMEOUT_S) -> None:
        self.root = root.resolve()
        self.clone_timeout_s = clone_timeout_s

    def clone_path(self, repo: RepoConfig) -> Path:
        return self.root / "cache" / f"{repo.name}.git"

    def cached_clone(self, repo: RepoConfig) -> Path:
        """A mirror clone of `repo`, created on first use and fetched on every later call."""
        return self._ensure_clone(repo, fetch=True)

    def worktree(self, repo: RepoConfig, incident_id: str, ref: str, purpose: str) -> Path:
        """A fresh detached worktree of `ref` at `root/worktrees/<incident>/<purpose>` (recreated if present)."""
        path = self.root / "worktrees" / _component(incident_id) / _component(purpose)
        clone = self._ensure_clone(repo, fetch=False)
        with self._locked(repo.name):
            sha = self._resolve_or_fetch(clone, ref)
            self._discard_worktree(clone, path)
            path.parent.mkdir(parents=True, exist_ok=True)
            git(clone, "worktree", "add", "--force", "--detach", str(path), sha)
        return path

    def remove_worktree(self, path: Path) -> None:
        """Remove a worktree made by `worktree` (and its incident folder once empty); absent paths are fine."""
        path = path.resolve()
        clone: Path | None = None
        if (path / ".git").is_file():  # a linked worktree; its common dir is the cached clone
            try:
                clone = path / git(path, "rev-parse", "--git-common-dir").strip()
            except GitError:
                clone = None
        if clone is not None:
            with self._locked(clone.name.removesuffix(".git")):
                self._discard_worktree(clone, path)
        elif path.exists():
            shutil.rmtree(path)
        parent = path.parent
        if parent.parent == self.root / "worktrees" and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()

    # -- internals

    def _ensure_clone(self, repo: RepoConfig, *, fetch: bool) -> Path:
        dest = self.clone_path(repo)
        with self._locked(repo.name):
            if (dest / "HEAD").exists():
                if fetch:
                    git(dest, "fetch", "--prune", "--quiet", "origin", timeout=self.clone_timeout_s)
                return dest
            if dest.exists():  # a half-made clone from an interrupted run
                shutil.rmtree(dest)
            partial = dest.with_name(dest.name + ".partial")
            if partial.exists():
                shutil.rmtree(partial)
            dest.parent.mkdir(parents=True, exist_ok=True)
            git(
                dest.parent,
                "clone",
                "--mirror",
                "--quiet",
                "--",
                _source(repo),
                str(partial),
                timeout=self.clone_timeout_s,
            )
            partial.rename(dest)
        return dest

    def _resolve_or_fetch(self, clone: Path, ref: str) -> str:
        """A sha that is already present is used as is; anything else is fetched first, so it is current."""
        if HEX_SHA.match(ref) and commit_exists(clone, ref):
            return resolve(clone, ref)
        git(clone, "fetch", "--prune", "--quiet", "origin", timeout=self.clone_timeout_s)
        return resolve(clone, ref)

    def _discard_worktree(self, clone: Path, path: Path) -> None:
        """Forget the worktree at `path` whatever state it is in (registered, stale, or a bare folder)."""
        if path.exists():
            try:
                git(clone, "worktree", "remove", "--force", "--force", str(path))
            except GitError:
                shutil.rmtree(path, ignore_errors=True)
        git(clone, "worktree", "prune")

    @contextmanager
    def _locked(self, repo_name: str) -> Iterator[None]:
        """Serialize clone/fetch/worktree changes of one repository across threads and processes."""
        lock_path = self.root / "cache" / f"{repo_name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _source(repo: RepoConfig) -> str:
    """Where to clone from: an absolute local path, or the URL as given."""
    if repo.path:
        return str(Path(repo.path).expanduser().resolve())
    return repo.location()


def _component(value: str) -> str:
    """A safe single path component (incident ids and purposes come from events)."""
    if not _SAFE_COMPONENT.match(value) or value in (".", ".."):
        raise ValueError(f"unsafe workspace name {value!r}")
    return value

"""Fixgen's view of the settings tree: where its worktrees and the repositories' environments live, and the policy
limits a model patch keeps (the sandbox reads `settings.sandbox` itself; `fixgen.max_attempts` bounds the agent)."""

from __future__ import annotations

from pathlib import Path

from pagerpatch.git.worktrees import Workspaces
from pagerpatch.settings import RepoConfig, Settings
from services.fixgen.domain.policy import PatchPolicy


def make_workspaces(settings: Settings) -> Workspaces:
    """Fixgen's cached clones and worktrees, in a folder of their own under the state directory."""
    return Workspaces(settings.state_dir / "workspaces" / "fixgen")


def environments_root(settings: Settings) -> Path:
    """`$PAGERPATCH_HOME/envs`: one folder per repository, one environment per dependency hash."""
    return settings.state_dir / "envs"


def repo_timeout_s(repo: RepoConfig, default_s: float) -> float:
    """The repository's own test limit when it has one, else the sandbox's."""
    return repo.test_timeout_s if repo.test_timeout_s is not None else default_s


def patch_policy(settings: Settings) -> PatchPolicy:
    """`settings.policy`'s limits on a change: protected paths, files, lines."""
    policy = settings.policy
    return PatchPolicy(tuple(policy.protected_paths), policy.max_diff_lines, policy.max_files)

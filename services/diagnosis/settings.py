"""Diagnosis's view of the settings tree: where workspaces live."""

from __future__ import annotations

from pagerpatch.git.worktrees import Workspaces
from pagerpatch.settings import Settings


def make_workspaces(s: Settings) -> Workspaces:
    return Workspaces(s.state_dir / "workspaces" / "diagnosis")

"""Diagnosis's view of the settings tree: where workspaces live."""

from __future__ import annotations

from pagerpatch.settings import Settings
from pagerpatch.worktrees import Workspaces


def make_workspaces(s: Settings) -> Workspaces:
    return Workspaces(s.state_dir / "workspaces" / "diagnosis")

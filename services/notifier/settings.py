"""Notifier's view of the settings tree: which SCM pull requests go to."""

from __future__ import annotations

from pagerpatch.scm import LocalGitScm, Scm
from pagerpatch.settings import Settings


def make_scm(s: Settings) -> Scm:
    return LocalGitScm(s.state_dir)

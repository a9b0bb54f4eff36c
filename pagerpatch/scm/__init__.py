"""Source control: where pull requests go. `Scm` is the port; `LocalGitScm` the default (a local bare remote)."""

from __future__ import annotations

from pagerpatch.scm.local import LocalGitScm
from pagerpatch.scm.port import PushedBranch, Scm

__all__ = ["LocalGitScm", "PushedBranch", "Scm"]

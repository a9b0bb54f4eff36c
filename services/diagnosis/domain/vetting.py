"""Which candidate commits are set aside before one is named, and how each is reported in `tried`.

A candidate is set aside when the repository declares it cosmetic (listed in `.git-blame-ignore-revs` at the
diagnosed revision), when it touched only test files (it cannot have broken the code a trace runs through),
or when its change to the candidate's code is cosmetic (`cosmetic.cosmetic_change`).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from pagerpatch.git.paths import is_test_path
from services.diagnosis.domain.facts import Commit

IGNORE_REVS_FILE = ".git-blame-ignore-revs"  # GitHub's and git's convention for formatting-only commits
IGNORED = f"listed in {IGNORE_REVS_FILE}"

_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_LISTED_FILES = 3


def parse_ignore_revs(text: str | None) -> frozenset[str]:
    """The full commit shas a `.git-blame-ignore-revs` lists (`#` comments and anything else git rejects dropped)."""
    shas: set[str] = set()
    for line in (text or "").splitlines():
        word = line.split("#", 1)[0].strip().lower()
        if _FULL_SHA.match(word):
            shas.add(word)
    return frozenset(shas)


def only_tests(changed: Collection[str]) -> str | None:
    """Why a commit that changed the files `changed` is set aside for touching only tests; None when it did not."""
    if not changed or not all(is_test_path(p) for p in changed):
        return None
    listed = sorted(changed)
    more = f" and {len(listed) - _LISTED_FILES} more" if len(listed) > _LISTED_FILES else ""
    return f"changed only test files: {', '.join(listed[:_LISTED_FILES])}{more}"


def set_aside(commit: Commit, why: str) -> str:
    """A `tried` entry for a candidate commit set aside: `abc1234 docs: tidy (skipped: only docstrings changed)`."""
    return f"{commit.short_sha} {commit.subject} (skipped: {why})"

"""What a repository path is (pure), read one way by every stage that asks.

`is_test_path`: diagnosis sets aside a commit that touched only tests, fixgen keeps tests out of the files a fix
must change, and `eval fixes` counts a test-only patch as cosmetic; all three mean the same files.
`is_protected`: fixgen refuses a patch touching a `policy.protected_paths` path before anything of it runs; review
rates such a patch HIGH.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

__all__ = ["is_protected", "is_test_path"]

# Folders whose files are tests (src/test/java included; `testing` is pytest's and numpy's helper package name).
TEST_DIRS = frozenset({"tests", "test", "testing", "__tests__", "spec", "specs"})
_TEST_FILE = re.compile(
    r"^(?:test_.+|.+_tests?\.\w+|conftest\.py|.+\.(?:spec|test)\.\w+|.+Tests?\.(?:java|kt|scala|cs)|.+_spec\.rb)$"
)


def is_test_path(path: str) -> bool:
    """Whether a repository path (`/`-separated) is test code by the usual conventions: a tests/, test/,
    __tests__/ or spec/ folder, test_*.py, *_test.py, *_test.go, conftest.py, *.spec.ts, *.test.js, FooTest.java,
    *_spec.rb."""
    *folders, name = path.split("/")
    return bool(TEST_DIRS.intersection(folders)) or bool(_TEST_FILE.match(name))


def is_protected(path: str, patterns: Sequence[str]) -> bool:
    """A path is protected when it matches a glob (`deploy/**`, `*.sql`) or sits under a listed folder (`infra/`,
    `secrets`). Globs match the whole path and `*` crosses `/`, so `deploy/**` and `deploy/*` protect the tree."""
    for pattern in patterns:
        folder = pattern.rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path == folder or path.startswith(folder + "/"):
            return True
    return False

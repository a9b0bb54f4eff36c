"""The real bubblewrap sandbox for integration tests, and the mark that skips a test on a machine where it cannot
run (no bwrap, or user namespaces refused)."""

from __future__ import annotations

import pytest

from pagerpatch.sandbox import BubblewrapSandbox

BWRAP = BubblewrapSandbox()
needs_bwrap = pytest.mark.skipif(not BWRAP.available(), reason=BWRAP.unavailable_reason() or "")

"""Pure parts of the sandbox: summary extraction, output truncation, and the factory's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagerpatch.sandbox import (
    BubblewrapSandbox,
    OutputBuffer,
    SandboxResult,
    SandboxUnavailable,
    UnsandboxedRunner,
    extract_summary,
    make_sandbox,
    truncate_output,
)
from pagerpatch.settings import SandboxSettings

PYTEST_VERBOSE_FAIL = """\
============================= test session starts ==============================
collected 13 items

tests/test_a.py ............F                                            [100%]

=================================== FAILURES ===================================
___________________________________ test_b ____________________________________
E       assert 1 == 2
=========================== short test summary info ============================
FAILED tests/test_a.py::test_b - assert 1 == 2
========================= 1 failed, 12 passed in 0.31s =========================
"""

UNITTEST_FAIL = """\
.F.
======================================================================
FAIL: test_x (test_m.T.test_x)
----------------------------------------------------------------------
AssertionError: 1 != 2

----------------------------------------------------------------------
Ran 3 tests in 0.001s

FAILED (failures=1)
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("..\n2 passed in 0.01s\n", "2 passed in 0.01s"),
        ("F.\n\n1 failed, 1 passed in 0.12s\n\n", "1 failed, 1 passed in 0.12s"),
        (PYTEST_VERBOSE_FAIL, "1 failed, 12 passed in 0.31s"),
        (
            "===== 3 passed, 1 skipped, 2 warnings in 1.05s (0:00:01) =====",
            "3 passed, 1 skipped, 2 warnings in 1.05s (0:00:01)",
        ),
        (
            "ERROR collecting x.py\n!!!! Interrupted: 1 error during collection !!!!\n=== 1 error in 0.20s ===",
            "1 error in 0.20s",
        ),
        ("\n==== no tests ran in 0.00s ====\n", "no tests ran in 0.00s"),
        ("\x1b[32m\x1b[1m4 passed\x1b[0m\x1b[32m in 0.02s\x1b[0m\n", "4 passed in 0.02s"),
        ("...\n----\nRan 3 tests in 0.002s\n\nOK\n", "Ran 3 tests in 0.002s: OK"),
        (UNITTEST_FAIL, "Ran 3 tests in 0.001s: FAILED (failures=1)"),
        ("Ran 1 test in 0.000s\n\nOK (skipped=1)\n", "Ran 1 test in 0.000s: OK (skipped=1)"),
        (
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured\n",
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured",
        ),
        ("Tests:       1 failed, 2 passed, 3 total\nTime: 1s\n", "Tests: 1 failed, 2 passed, 3 total"),
        ("building...\nsomething broke\n\n  \n", "something broke"),
        ("I have 3 apples in 2s\n", "I have 3 apples in 2s"),
        ("", "(no output)"),
        ("\n  \n", "(no output)"),
        ("x" * 500, "x" * 199 + "…"),
    ],
)
def test_extract_summary(output: str, expected: str) -> None:
    assert extract_summary(output) == expected


def test_summary_of_timeout_says_so() -> None:
    result = SandboxResult("sleep 9", None, True, 1.02, "started\n", "bubblewrap")
    assert not result.passed
    assert result.summary == "timed out after 1.0s; last output: started"


@pytest.mark.parametrize(
    ("exit_code", "timed_out", "passed"), [(0, False, True), (1, False, False), (None, True, False)]
)
def test_passed(exit_code: int | None, timed_out: bool, passed: bool) -> None:
    assert SandboxResult("true", exit_code, timed_out, 0.1, "", "unsandboxed").passed is passed


def test_short_output_is_kept_whole() -> None:
    assert truncate_output(b"hello\nworld\n", 1024) == "hello\nworld\n"
    assert truncate_output(b"a" * 1024, 1024) == "a" * 1024


def test_long_output_keeps_head_and_tail_with_marker() -> None:
    data = b"HEAD" + b"m" * 100_000 + b"TAIL"
    text = truncate_output(data, 2048)
    assert text.startswith("HEAD") and text.endswith("TAIL")
    assert len(text.encode()) <= 2048
    head, marker_and_tail = text.split("\n…[truncated ", 1)
    dropped = int(marker_and_tail.split(" bytes]…\n", 1)[0])
    tail = marker_and_tail.split(" bytes]…\n", 1)[1]
    assert len(head) + len(tail) + dropped == len(data)


def test_truncation_never_splits_a_character() -> None:
    data = "é€😀".encode() * 5000
    text = truncate_output(data, 1500)
    assert "\ufffd" not in text
    assert len(text.encode()) <= 1500


def test_streaming_buffer_matches_one_shot_and_stays_bounded() -> None:
    data = bytes(range(32, 127)) * 3000
    buffer = OutputBuffer(4096)
    for start in range(0, len(data), 777):
        buffer.feed(data[start : start + 777])
        assert len(buffer._head) + len(buffer._tail) <= 4096 + 2 * 4096
    assert buffer.total == len(data) and buffer.truncated
    assert buffer.render() == truncate_output(data, 4096)


def test_factory_refuses_unsandboxed_without_allow_flag() -> None:
    with pytest.raises(SandboxUnavailable, match="PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true"):
        make_sandbox(SandboxSettings(backend="unsandboxed"))
    with pytest.raises(SandboxUnavailable):
        UnsandboxedRunner(allow_unsandboxed=False)


def test_factory_builds_unsandboxed_when_allowed() -> None:
    runner = make_sandbox(SandboxSettings(backend="unsandboxed", allow_unsandboxed=True, timeout_s=7))
    assert isinstance(runner, UnsandboxedRunner) and runner.timeout_s == 7


def test_missing_bwrap_is_reported_with_install_hint() -> None:
    missing = "/nonexistent/bin/bwrap"
    assert not BubblewrapSandbox(bwrap_path=missing).available()
    with pytest.raises(SandboxUnavailable) as caught:
        make_sandbox(SandboxSettings(), bwrap_path=missing)
    message = str(caught.value)
    assert "bubblewrap" in message and missing in message
    assert "apt install bubblewrap" in message and "dnf install bubblewrap" in message
    assert "PAGERPATCH_SANDBOX__BACKEND=unsandboxed" in message
    assert "PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true" in message


def test_missing_bwrap_is_not_replaced_by_unsandboxed_even_when_allowed() -> None:
    with pytest.raises(SandboxUnavailable):
        make_sandbox(SandboxSettings(allow_unsandboxed=True), bwrap_path="/nonexistent/bwrap")


def test_bwrap_that_cannot_create_namespaces_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable) as caught:
        make_sandbox(SandboxSettings(), bwrap_path=fake)
    message = str(caught.value)
    assert "cannot create the sandbox namespaces" in message
    assert "No permissions to create new namespace" in message
    assert "PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true" in message

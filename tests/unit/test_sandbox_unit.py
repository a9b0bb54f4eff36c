"""Pure parts of the sandbox: summary extraction, output truncation, the factory's refusals, per-test results from
JUnit XML, and what a repository environment is made from and binds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pagerpatch.sandbox import (
    BaseInterpreter,
    BubblewrapSandbox,
    OutputBuffer,
    RepoEnvironment,
    SandboxResult,
    SandboxUnavailable,
    TestReport,
    TestResults,
    UnsandboxedRunner,
    extract_summary,
    failure_list,
    make_sandbox,
    parse_junit,
    truncate_output,
)
from pagerpatch.sandbox.environment import dependency_files, environment_key, setup_failure
from pagerpatch.sandbox.junit import read_junit
from pagerpatch.sandbox.testrun import pytest_options
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
        (  # node --test's TAP reporter (the default off a terminal)
            "ok 1 - ok\nnot ok 2 - bad\n1..2\n# tests 2\n# suites 0\n# pass 1\n# fail 1\n# cancelled 0\n"
            "# skipped 0\n# todo 0\n# duration_ms 97.214654\n",
            "2 tests: 1 passed, 1 failed in 97ms",
        ),
        (  # node's spec reporter: the counts come before the failures' details
            "✔ ok (0.5ms)\nℹ tests 3\nℹ suites 0\nℹ pass 3\nℹ fail 0\nℹ cancelled 0\nℹ skipped 1\nℹ todo 0\n"
            "ℹ duration_ms 41.5\n\n✖ failing tests:\n  at Test.run (node:internal/test_runner/test:835:12)\n",
            "3 tests: 3 passed, 0 failed, 1 skipped in 42ms",
        ),
        ("# pass 1\n# fail 0\n", "# fail 0"),  # without the total it is not node's summary
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


# ---------------------------------------------------------------- per-test results (JUnit XML)

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="6">
<testcase classname="tests.test_a.TestX" name="test_y" file="tests/test_a.py" line="2"><failure message="x"/></testcase>
<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="3"/>
<testcase classname="tests.test_a" name="test_p[1-2]" file="tests/test_a.py" line="5"><skipped/></testcase>
<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="3"><error message="teardown"/></testcase>
<testcase classname="" name="tests.test_b" file="tests/test_b.py"><error message="collection failure"/></testcase>
<testcase classname="test_mod.TestZ" name="test_z"/>
</testsuite></testsuites>"""


def test_junit_ids_are_pytest_node_ids_and_the_worst_outcome_wins() -> None:
    results = parse_junit(JUNIT)
    assert results is not None
    assert dict(results.outcomes) == {
        "tests/test_a.py::TestX::test_y": "failed",
        "tests/test_a.py::test_ok": "failed",  # passed in the call, errored in teardown
        "tests/test_a.py::test_p[1-2]": "skipped",
        "tests/test_b.py": "failed",  # the module did not import
        "test_mod.TestZ::test_z": "passed",  # no file attribute: classname::name
    }
    assert results.failed == ["tests/test_a.py::TestX::test_y", "tests/test_a.py::test_ok", "tests/test_b.py"]
    assert results.passed == ["test_mod.TestZ::test_z"]


@pytest.mark.parametrize("text", ["", "not xml", "<html><body/></html>", "<testsuite><testcase"])
def test_what_is_not_a_junit_report_gives_no_results(text: str) -> None:
    assert parse_junit(text) is None


def test_a_report_over_the_cap_is_ignored(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(JUNIT)
    assert read_junit(report) is not None
    assert read_junit(report, limit=100) is None and read_junit(tmp_path / "missing.xml") is None


@pytest.mark.parametrize(
    ("tests", "expected"),
    [
        ([], "0 failed"),
        (["a"], "1 failed: a"),
        (["a", "b", "c"], "3 failed: a, b, c"),
        ([f"t{i}" for i in range(32)], "32 failed: t0, t1, t2 (and 29 more)"),
    ],
)
def test_failure_list_names_the_first_tests(tests: list[str], expected: str) -> None:
    assert failure_list(tests) == expected


def test_a_test_report_keeps_the_first_fifty_failing_ids() -> None:
    results = TestResults({f"t{i}": "failed" for i in range(60)})
    run = TestReport(SandboxResult("pytest", 1, False, 1.0, "", "bubblewrap"), results)
    assert run.failed_tests == [f"t{i}" for i in range(50)]
    assert TestReport(SandboxResult("make test", 1, False, 1.0, "", "bubblewrap")).failed_tests == []


def test_pytest_is_asked_for_a_junit_report_outside_the_tree_and_no_cache(tmp_path: Path) -> None:
    options = pytest_options(tmp_path)
    assert f"--junitxml={tmp_path}/report.xml" in options
    assert "-o junit_family=xunit1" in options and "-p no:cacheprovider" in options


# ---------------------------------------------------------------- repository environments (pure parts)

INTERPRETER = BaseInterpreter(Path("/opt/python/3.11.7/bin/python3.11"), Path("/opt/python/3.11.7"), "3.11.7")
ENV = RepoEnvironment("shop", Path("/home/pp/envs/shop/abc"), "abc", INTERPRETER)


def key(
    setup_command: str | None = "pip install -e .",
    python_version: str = "3.11.7",
    files: dict[str, str] | None = None,
    backend: str = "bubblewrap",
    pytest: str = "9.2.0",
) -> str:
    manifests = {"pyproject.toml": "1"} if files is None else files
    return environment_key(
        setup_command=setup_command, python_version=python_version, files=manifests, backend=backend, pytest=pytest
    )


def test_the_environment_key_changes_with_what_the_environment_is_made_from() -> None:
    assert key() == key() and len(key()) == 16
    different = [
        key(setup_command="uv sync"),
        key(python_version="3.12.1"),
        key(files={"pyproject.toml": "2"}),
        key(files={"pyproject.toml": "1", "uv.lock": "1"}),
        key(backend="unsandboxed"),
    ]
    assert len({key(), *different}) == 6
    assert key(pytest="9.3") == key()  # with a set-up, our pytest is not part of it
    assert key(setup_command=None, pytest="9.3") != key(setup_command=None)


def test_dependency_files_are_the_top_level_manifests_and_lock_files(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "requirements-dev.txt", "requirements.txt", "README.md"):
        (tmp_path / name).write_text(name)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "setup.py").write_text("nested")
    assert sorted(dependency_files(tmp_path)) == [
        "pyproject.toml",
        "requirements-dev.txt",
        "requirements.txt",
        "uv.lock",
    ]


def test_an_environment_puts_its_python_first_and_hides_user_site_and_pythonpath() -> None:
    variables = ENV.variables()
    assert variables["PATH"].split(":")[0] == "/home/pp/envs/shop/abc/bin"
    assert variables["VIRTUAL_ENV"] == "/home/pp/envs/shop/abc" and variables["PYTHONNOUSERSITE"] == "1"
    assert "PYTHONPATH" not in variables


def test_an_environment_is_read_only_to_tests_and_writable_to_its_setup() -> None:
    run = ENV.mounts(writable=(Path("/tmp/results"),))
    assert run.read_only == (Path("/opt/python/3.11.7"), ENV.path) and run.writable == (Path("/tmp/results"),)
    assert (run.network, run.host_python, run.workdir_at) == (False, False, Path("/workspace/shop"))
    setup = ENV.mounts(network=True, setup=True)
    assert setup.read_only == (Path("/opt/python/3.11.7"),) and setup.writable == (ENV.path,) and setup.network


def test_the_base_interpreter_is_not_pagerpatchs_venv() -> None:
    current = BaseInterpreter.current()
    assert current.prefix == Path(sys.base_prefix).resolve()
    assert not str(current.executable).startswith(sys.prefix) or sys.prefix == sys.base_prefix


def test_the_overlay_fills_in_what_a_worktree_lacks_and_never_overwrites(tmp_path: Path) -> None:
    env = RepoEnvironment("shop", tmp_path / "env", "abc", INTERPRETER)
    (env.overlay / "src" / "shop").mkdir(parents=True)
    (env.overlay / "src" / "shop" / "_version.py").write_text("__version__ = '1.0'\n")
    (env.overlay / "README").write_text("generated")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "README").write_text("tracked")
    assert env.apply_overlay(tree) == 1
    assert (tree / "src" / "shop" / "_version.py").read_text() == "__version__ = '1.0'\n"
    assert (tree / "README").read_text() == "tracked"
    assert env.apply_overlay(tree) == 0


def test_a_failed_setup_says_what_ran_how_it_ended_and_the_tail() -> None:
    result = SandboxResult("pip install -e .", 1, False, 3.0, "x" * 10_000 + "\nERROR: no matching dist", "bubblewrap")
    reason = setup_failure("shop", result)
    assert reason.startswith("the set-up of shop failed (`pip install -e .`, exit 1)")
    assert reason.endswith("ERROR: no matching dist") and len(reason) < 4500


def test_a_bubblewrap_run_with_mounts_binds_only_what_it_is_given(tmp_path: Path) -> None:
    sandbox = BubblewrapSandbox(bwrap_path="/usr/bin/bwrap")
    argv = sandbox.argv("python -m pytest", tmp_path, mounts=ENV.mounts(writable=(Path("/tmp/results"),)))
    pairs = [(argv[i], argv[i + 1], argv[i + 2]) for i in range(len(argv) - 2) if argv[i].endswith("bind")]
    assert ("--bind", str(tmp_path), "/workspace/shop") in pairs
    assert ("--ro-bind", "/home/pp/envs/shop/abc", "/home/pp/envs/shop/abc") in pairs
    assert ("--bind", "/tmp/results", "/tmp/results") in pairs
    assert all(sys.prefix != host for _, host, _ in pairs) or sys.prefix == sys.base_prefix  # not pagerpatch's venv
    assert "--unshare-net" in argv and argv[argv.index("--chdir") + 1] == "/workspace/shop"
    online = sandbox.argv("pip install .", tmp_path, mounts=ENV.mounts(network=True, setup=True))
    assert "--unshare-net" not in online
    plain = sandbox.argv("true", tmp_path)
    assert "--unshare-net" in plain and plain[plain.index("--chdir") + 1] == str(tmp_path)

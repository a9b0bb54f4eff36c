"""Per-test results from the JUnit XML report pytest writes (pure): which tests passed, failed or were skipped.

The report is our own file (written by the run we started, into a directory outside the worktree), so the standard
library's parser is enough; its size is capped before parsing all the same, because the tests wrote into it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["JUNIT_LIMIT_BYTES", "TestOutcome", "TestResults", "failure_list", "parse_junit", "read_junit"]

TestOutcome = Literal["passed", "failed", "skipped"]
JUNIT_LIMIT_BYTES = 32 * 1024 * 1024  # a bigger report is ignored (the run falls back to its exit code)
_RANK: dict[TestOutcome, int] = {"passed": 0, "skipped": 1, "failed": 2}  # a test reported twice keeps the worst


@dataclass(frozen=True)
class TestResults:
    """Each test's outcome by id (`tests/test_a.py::TestX::test_y`), in the order the report lists them."""

    __test__ = False  # not a pytest class

    outcomes: Mapping[str, TestOutcome] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [test for test, outcome in self.outcomes.items() if outcome == "failed"]

    @property
    def passed(self) -> list[str]:
        return [test for test, outcome in self.outcomes.items() if outcome == "passed"]


def _test_id(case: ET.Element) -> str:
    """`file::Class::name` when the report names the file (junit_family=xunit1), else `classname::name`."""
    classname, name = case.get("classname", ""), case.get("name", "")
    file = case.get("file", "")
    if file and not classname:  # a collection error: the module itself failed
        return file
    if file.endswith(".py"):
        module = file[:-3].replace("/", ".")
        if classname == module or classname.startswith(module + "."):
            rest = classname[len(module) :].lstrip(".")
            return "::".join(part for part in (file, rest.replace(".", "::"), name) if part)
    return f"{classname}::{name}" if classname else name


def _outcome(case: ET.Element) -> TestOutcome:
    tags = {child.tag for child in case}
    if tags & {"failure", "error"}:
        return "failed"
    return "skipped" if "skipped" in tags else "passed"


def parse_junit(text: str | bytes) -> TestResults | None:
    """The per-test outcomes of a JUnit XML report; None when it is not one (the caller falls back)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if root.tag not in ("testsuites", "testsuite"):
        return None
    outcomes: dict[str, TestOutcome] = {}
    for case in root.iter("testcase"):
        test, outcome = _test_id(case), _outcome(case)
        if test and _RANK[outcome] >= _RANK[outcomes.get(test, "passed")]:
            outcomes[test] = outcome
    return TestResults(outcomes)


def read_junit(path: Path, limit: int = JUNIT_LIMIT_BYTES) -> TestResults | None:
    """The report at `path`, when the run wrote one no bigger than `limit` bytes."""
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        return parse_junit(path.read_bytes())
    except OSError:
        return None


def failure_list(tests: Iterable[str], *, verb: str = "failed", shown: int = 3) -> str:
    """`32 failed: tests/test_a.py::test_x, ... (and 29 more)`: the count and the first few test ids."""
    names = list(tests)
    head = ", ".join(names[:shown])
    more = f" (and {len(names) - shown} more)" if len(names) > shown else ""
    return f"{len(names)} {verb}: {head}{more}" if names else f"0 {verb}"

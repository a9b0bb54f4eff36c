"""Reproduce first (pure): the regression test a model fix brings must fail at the base commit the way the alert
did, and pass with the fix; and the repository's own suite must not get worse (docs/fixgen.md).

Only the regression test's file runs for the first two checks: pytest for a Python file, `node --test` for a
JavaScript one. pytest's short summary (`FAILED path::test - KeyError: 'x'`) and its `E` lines say why a test
failed; for node, each failing test's TAP block (`name: 'TypeError'`, `error: ...`) and the `# TypeError: ...` line
of a file that threw while loading. The alert's exception type (by its last dotted part) or a failing assertion
count as a reproduction.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pagerpatch.sandbox import TestReport, failure_list

__all__ = [
    "Reproduced",
    "base_run_reproduces",
    "failure_reasons",
    "judge_patch",
    "regression_command",
    "tap_failures",
]

_SUMMARY = re.compile(r"^(?:FAILED|ERROR) (\S+)(?: - (.*))?$")
_E_LINE = re.compile(r"^E\s+((?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure)\b|assert ).*)$")
_NAMED = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception))\b")
_JS = (".js", ".mjs", ".cjs")
_NOT_OK = re.compile(r"^\s*not ok \d+ - ")
_TAP_KEY = re.compile(r"^\s*(name|error|failureType):\s*(.*)$")
_LOAD_ERROR = re.compile(r"^# ((?:[A-Za-z_$][\w$]*)?(?:Error|Exception)(?: \[\w+\])?: .*)$")
_SHOWN = 300


@dataclass(frozen=True)
class Reproduced:
    """What the regression test did at the base commit: True only for the alert's failure, False when it did not
    fail that way, None when there was no test to run (`fix.validated.reproduced`); and the note saying so."""

    reproduced: bool | None
    note: str


def regression_command(path: str) -> str | None:
    """The command that runs only the regression test's file, or None for a language fixgen cannot run alone."""
    quoted = shlex.quote(path)
    if path.endswith(".py"):
        return f"python -m pytest -q -rfE --tb=short -- {quoted}"
    if path.endswith(_JS):
        return f"node --test {quoted}"
    return None


def failure_reasons(output: str) -> list[str]:
    """Why the tests failed: pytest's short-summary messages (`KeyError: 'x'`; cut when the line is too long for
    the terminal), then its `E` lines naming an exception or an assertion."""
    lines = output.splitlines()
    summary = [m.group(2) for line in lines if (m := _SUMMARY.match(line.strip())) and m.group(2)]
    raised = [m.group(1).strip() for line in lines if (m := _E_LINE.match(line))]
    return list(dict.fromkeys([*summary, *raised]))


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _tap_block(lines: list[str]) -> str | None:
    """`TypeError: message` from one failing test's YAML block (None for a suite failing only by its subtests,
    or a file that failed to load: node says no more than `test failed` there)."""
    found: dict[str, str] = {}
    for n, line in enumerate(lines):
        if line.strip() == "...":
            break
        if (m := _TAP_KEY.match(line)) and m.group(1) not in found:
            value = m.group(2).strip()
            if value in ("|-", "|", ">-", ">"):  # a block scalar: its first line says enough
                value = next((more.strip() for more in lines[n + 1 :] if more.strip()), "")
            found[m.group(1)] = _unquote(value)
    if found.get("failureType") == "subtestsFailed":
        return None
    name, error = found.get("name", ""), found.get("error", "")
    if name:
        return f"{name}: {error}" if error else name
    # node names no plain `Error` (only its subclasses); `test failed` is a file that did not load (said apart)
    return f"Error: {error}" if error and error != "test failed" else None


def tap_failures(output: str) -> list[str]:
    """Why `node --test` failed: each failing test's error name and message from its TAP block, then the errors
    a test file threw while loading (`# TypeError: ...`, from its stderr)."""
    lines = output.splitlines()
    failed = [r for n, line in enumerate(lines) if _NOT_OK.match(line) and (r := _tap_block(lines[n + 1 :]))]
    loading = [f"the file failed to load: {m.group(1).strip()}" for line in lines if (m := _LOAD_ERROR.match(line))]
    return list(dict.fromkeys([*failed, *loading]))


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _names_exception(reason: str, exception: str) -> bool:
    return any(_short(found) == _short(exception) for found in _NAMED.findall(reason)) or reason.startswith(
        _short(exception)
    )


def base_run_reproduces(report: TestReport, path: str, exception_type: str | None) -> Reproduced:
    """Whether the regression test's run at the base commit reproduces the alert (its exception or an assertion)."""
    result = report.result
    if result.timed_out:
        return Reproduced(False, f"the regression test {path} timed out at the base commit: no reproduction")
    if result.passed:
        return Reproduced(
            False,
            f"NOT A REPRODUCTION: the regression test {path} already passes at the base commit, so it does not "
            "show the failure the fix is for",
        )
    if path.endswith(_JS):
        reasons = tap_failures(result.output) or [result.output[-2000:]]  # no TAP: whatever node said
    else:
        reasons = failure_reasons(result.output)
    expected = exception_type or ""
    for reason in reasons:
        if expected and _names_exception(reason, expected):
            return Reproduced(True, _reproduced(path, expected, reason))
    for reason in reasons:
        if "AssertionError" in reason or reason.startswith("assert "):
            return Reproduced(True, _reproduced(path, "a failing assertion", reason))
    said = reasons[0][:_SHOWN] if reasons else result.summary
    wanted = expected or "a failing assertion"
    return Reproduced(
        False,
        f"NOT A REPRODUCTION: the regression test {path} fails at the base commit, but with {said!r}, not {wanted}",
    )


def _reproduced(path: str, what: str, reason: str) -> str:
    return f"reproduced: the regression test {path} fails at the base commit with {what} ({reason[:_SHOWN]})"


def judge_patch(base: TestReport, after: TestReport) -> tuple[str | None, list[str]]:
    """The suite with the fix against the baseline: why it is refused (None: it holds) and the tests it fixed."""
    if after.result.timed_out:
        return f"the tests time out with the fix: {after.result.summary}", []
    if base.tests is not None and after.tests is not None and not base.result.timed_out:
        base_failed = set(base.tests.failed)
        new = [test for test in after.tests.failed if test not in base_failed]
        if new:
            return f"the fix breaks tests that do not fail at the base commit: {failure_list(new)}", []
        if not after.result.passed and base.result.passed:
            return f"the test command fails with the fix (exit {after.result.exit_code}): {after.result.summary}", []
        return None, [test for test in base.tests.failed if after.tests.outcomes.get(test) == "passed"]
    if not after.result.passed:
        return f"the tests fail with the fix: {after.result.summary}", []
    return None, []

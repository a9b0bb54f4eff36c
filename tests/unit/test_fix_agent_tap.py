"""Reproduce first for a JavaScript regression test: what `node --test`'s TAP output says about why it failed.

The outputs are node 20's own (`node --test-reporter=tap --test <file>`), trimmed of stack frames and with the
paths shortened.
"""

from __future__ import annotations

import pytest

from services.fixgen.domain.regression import base_run_reproduces, tap_failures
from services.fixgen.memory import sandbox_result
from services.fixgen.ports import TestReport

TEST = "test/cart.test.js"


def run(output: str) -> TestReport:
    return TestReport(sandbox_result(f"node --test {TEST}", exit_code=1, output=output))


TYPE_ERROR = """\
TAP version 13
# Subtest: empty cart
not ok 1 - empty cart
  ---
  duration_ms: 1.220168
  location: '/workspace/shop/test/cart.test.js:4:1'
  failureType: 'testCodeFailure'
  error: "Cannot read properties of undefined (reading 'length')"
  code: 'ERR_TEST_FAILURE'
  name: 'TypeError'
  stack: |-
    exports.total (/workspace/shop/lib/cart.js:1:38)
  ...
1..1
# tests 1
# pass 0
# fail 1
"""
ASSERTION = """\
TAP version 13
# Subtest: eq
not ok 1 - eq
  ---
  failureType: 'testCodeFailure'
  error: |-
    Expected values to be strictly equal:

    1 !== 2

  code: 'ERR_ASSERTION'
  name: 'AssertionError'
  expected: 2
  actual: 1
  ...
1..1
"""
# A describe() block: the suite fails only because of its subtest; a plain Error has no `name` in node's TAP.
PLAIN_ERROR_IN_A_SUITE = """\
TAP version 13
# Subtest: cart
    # Subtest: ok
    ok 1 - ok
      ---
      duration_ms: 5.169933
      ...
    # Subtest: boom
    not ok 2 - boom
      ---
      failureType: 'testCodeFailure'
      error: 'plain boom'
      code: 'ERR_TEST_FAILURE'
      stack: |-
        TestContext.<anonymous> (/workspace/shop/test/cart.test.js:4:28)
      ...
    1..2
not ok 1 - cart
  ---
  type: 'suite'
  failureType: 'subtestsFailed'
  error: '1 subtest failed'
  code: 'ERR_TEST_FAILURE'
  ...
1..1
"""
DOES_NOT_LOAD = """\
TAP version 13
# node:internal/modules/cjs/loader:1210
#   throw err;
#   ^
# Error: Cannot find module './missing.js'
# Require stack:
# - /workspace/shop/test/cart.test.js
# Node.js v20.20.2
# Subtest: /workspace/shop/test/cart.test.js
not ok 1 - /workspace/shop/test/cart.test.js
  ---
  failureType: 'testCodeFailure'
  exitCode: 1
  error: 'test failed'
  code: 'ERR_TEST_FAILURE'
  ...
1..1
"""
THROWS_WHILE_LOADING = DOES_NOT_LOAD.replace(
    "# Error: Cannot find module './missing.js'", "# TypeError: Cannot read properties of undefined (reading 'x')"
)


def test_each_failing_tests_error_name_and_message_are_read_from_its_tap_block() -> None:
    assert tap_failures(TYPE_ERROR) == ["TypeError: Cannot read properties of undefined (reading 'length')"]
    assert tap_failures(ASSERTION) == ["AssertionError: Expected values to be strictly equal:"]
    assert tap_failures(PLAIN_ERROR_IN_A_SUITE) == ["Error: plain boom"]  # not the suite's "1 subtest failed"
    assert tap_failures(DOES_NOT_LOAD) == ["the file failed to load: Error: Cannot find module './missing.js'"]
    assert tap_failures("TAP version 13\n1..0\n# pass 0\n") == []


@pytest.mark.parametrize(
    ("output", "exception", "how"),
    [
        (TYPE_ERROR, "TypeError", "with TypeError (TypeError: Cannot read properties of undefined"),
        (ASSERTION, "TypeError", "with a failing assertion (AssertionError: Expected values"),
        (PLAIN_ERROR_IN_A_SUITE, "Error", "with Error (Error: plain boom)"),
        (THROWS_WHILE_LOADING, "TypeError", "with TypeError (the file failed to load: TypeError:"),
    ],
)
def test_nodes_report_of_the_alerts_error_or_an_assertion_is_a_reproduction(
    output: str, exception: str, how: str
) -> None:
    found = base_run_reproduces(run(output), TEST, exception)
    assert found.reproduced, found.note
    assert found.note.startswith(f"reproduced: the regression test {TEST} fails at the base commit {how}")
    assert "TAP version" not in found.note  # the reason, not the raw output


@pytest.mark.parametrize(
    ("output", "exception", "said"),
    [
        (TYPE_ERROR, "RangeError", "TypeError: Cannot read properties"),
        (PLAIN_ERROR_IN_A_SUITE, "TypeError", "Error: plain boom"),
        # a test file that cannot load reproduces nothing, even for an alert of a plain Error
        (DOES_NOT_LOAD, "Error", "the file failed to load: Error: Cannot find module"),
    ],
)
def test_another_error_or_a_file_that_does_not_load_is_not_a_reproduction(
    output: str, exception: str, said: str
) -> None:
    found = base_run_reproduces(run(output), TEST, exception)
    assert not found.reproduced
    assert found.note.startswith(f"NOT A REPRODUCTION: the regression test {TEST} fails at the base commit, but")
    assert said in found.note and f"not {exception}" in found.note

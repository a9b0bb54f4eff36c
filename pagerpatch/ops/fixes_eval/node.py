"""The JavaScript (node) side of `eval fixes`: capturing the alert a bug raises and running a scenario's oracle.

A JavaScript scenario is CommonJS run by the host's `node` (20 or newer, for `node --test` and its JUnit reporter).
Its trigger and its oracle live outside the repository and reach the repository's modules by bare paths from the
code root (`require("lib/cart")`), through NODE_PATH. The trigger must throw synchronously; the stack it prints
(`err.stack`, V8's format) is cut where the harness's own frames begin, and the checkout's paths are given the
production deploy prefix. The oracle is a `node:test` file, run with `node --test` and read from its JUnit report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from pagerpatch.ops.demo_repo import DEPLOY_PREFIX

__all__ = ["NODE_TEST_COMMAND", "NodeMissing", "capture_stack", "node_executable", "oracle_results"]

NODE_TEST_COMMAND = "node --test"  # a JavaScript scenario's test command unless it says otherwise
_PATH = "/usr/local/bin:/usr/bin:/bin"
_TRIGGER_FILE = "trigger.js"
_ORACLE_FILE = "oracle.test.js"
_REPORT_FILE = "oracle.xml"
_CAPTURE = r"""
'use strict';
const [trigger, harness] = process.argv.slice(2);
function report(stack) { process.stdout.write(JSON.stringify({ traceback: stack })); }
try {
  require(trigger);
} catch (err) {
  const lines = String((err && err.stack) || err).split('\n');
  const cut = lines.findIndex((line) => /^\s+at /.test(line) && line.includes(harness));
  report((cut < 0 ? lines : lines.slice(0, cut)).join('\n') + '\n');
  process.exit(0);
}
report(null);
"""


class NodeMissing(RuntimeError):
    """No `node` on the PATH: JavaScript scenarios cannot be built or judged."""


def node_executable() -> str:
    found = shutil.which("node", path=_PATH)
    if found is None:
        raise NodeMissing(f"JavaScript scenarios need node (20 or newer) on {_PATH}")
    return found


def _env(code_root: Path, home: str) -> dict[str, str]:
    return {"PATH": _PATH, "LANG": "C.UTF-8", "HOME": home, "NODE_PATH": str(code_root)}


def capture_stack(repo: Path, code_root: Path, trigger: str, timeout_s: float) -> str | None:
    """Run `trigger` against the checkout; the stack it threw (deploy paths), or None when it threw nothing.

    Raises RuntimeError when node itself failed (the message has the tail of its output).
    """
    with tempfile.TemporaryDirectory(prefix="pagerpatch-eval-") as tmp:
        harness = Path(tmp).resolve()
        (harness / "capture.js").write_text(_CAPTURE)
        (harness / _TRIGGER_FILE).write_text(trigger)
        argv = [node_executable(), str(harness / "capture.js"), str(harness / _TRIGGER_FILE), str(harness)]
        done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=timeout_s, check=False,
                              env=_env(code_root, tmp))  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr[-800:]}")
    stack: str | None = json.loads(done.stdout)["traceback"]
    if stack is None:
        return None
    for prefix in {str(repo) + "/", str(repo.resolve()) + "/"}:
        stack = stack.replace(prefix, DEPLOY_PREFIX)
    return stack


def oracle_results(code_root: Path, oracle: str, timeout_s: float) -> tuple[dict[str, str], str]:
    """Run the oracle with `node --test`: each test's result ("passed" or why it failed), and why there is none."""
    with tempfile.TemporaryDirectory(prefix="pagerpatch-oracle-") as tmp:
        folder = Path(tmp)
        (folder / _ORACLE_FILE).write_text(oracle)
        report = folder / _REPORT_FILE
        argv = [node_executable(), "--test", "--test-reporter=junit", f"--test-reporter-destination={report}",
                str(folder / _ORACLE_FILE)]  # fmt: skip
        done = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=timeout_s, check=False,
                              env=_env(code_root, tmp))  # fmt: skip
        text = report.read_text(encoding="utf-8", errors="replace") if report.is_file() else ""
        tail = (done.stderr or done.stdout).strip()[-300:]
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            return {}, f"no JUnit report (exit {done.returncode}): {tail}"
        results = _results(root, argv[0], folder, code_root, timeout_s)
    return results, "" if results else f"the oracle has no test (node: {tail or 'no output'})"


def _results(root: ET.Element, node: str, folder: Path, code_root: Path, timeout_s: float) -> dict[str, str]:
    """Each test case of the report: "passed", or why it failed."""
    results: dict[str, str] = {}
    for case in root.iter("testcase"):
        failure = next((c for c in case if c.tag in ("failure", "error")), None)
        why = None if failure is None else (failure.get("message") or case.get("failure") or "failed")
        name = case.get("name", "?")
        if name == str(folder / _ORACLE_FILE):  # the file as a whole: no test in it, or it failed to load
            if why is None:
                continue
            name, why = _ORACLE_FILE, _load_error(node, folder / _ORACLE_FILE, code_root, timeout_s)
        results[name] = "passed" if why is None else why[:300]
    return results


def _load_error(node: str, oracle: Path, code_root: Path, timeout_s: float) -> str:
    """Why the oracle file fails as a whole (node's JUnit report only says "test failed"): run it plainly once."""
    done = subprocess.run([node, str(oracle)], cwd=oracle.parent, capture_output=True, text=True, check=False,
                          timeout=timeout_s, env=_env(code_root, str(oracle.parent)))  # fmt: skip
    errors = [line.strip() for line in done.stderr.splitlines() if "Error" in line and not line.startswith(" ")]
    return f"the oracle file fails as a whole: {errors[-1] if errors else done.stderr.strip()[-200:] or 'no output'}"

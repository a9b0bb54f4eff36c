"""A deterministic proof without a model: call the failing function again with the arguments its frame captured.

When the alert carried the innermost repository frame's local variables (plain JSON values) and its exception
type, a small script imports that frame's module from the worktree (src/ layout or the repository root), calls the
top-level function with the captured parameters and exits with a code saying what happened. It must raise the
alert's exception type at the base commit and not after the revert; the same call then becomes a regression test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from pagerpatch.kernel.redaction import redact
from pagerpatch.sandbox import SandboxResult
from schemas.events import DiagnosisReadyPayload
from services.fixgen.domain.proof import ReproductionCheck

__all__ = [
    "EXIT_IMPOSSIBLE",
    "EXIT_OTHER",
    "EXIT_RAISED",
    "EXIT_RETURNED",
    "Reproduction",
    "ReproductionOutcome",
    "check",
    "outcome_of",
    "plan",
    "regression_test",
    "script",
]

EXIT_RETURNED, EXIT_RAISED, EXIT_OTHER, EXIT_IMPOSSIBLE = 0, 10, 11, 12
MARKER = "pagerpatch-reproduction:"
ReproductionOutcome = Literal["raised", "other", "returned", "impossible", "inconclusive"]
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*$")
_METHOD_MARKERS = ("self", "cls")


@dataclass(frozen=True)
class Reproduction:
    """The call to make: which function of which repository file, with which arguments, expecting which error."""

    file: str
    function: str
    arguments: dict[str, Any]
    exception_type: str


def _plain(value: object) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return False


def _repository_file(frame_file: str, trace: list[str]) -> str | None:
    """The repository path of the frame's file: itself, or the trace file its (deployed) path ends with."""
    if frame_file in trace:
        return frame_file
    for known in trace:
        if frame_file.endswith("/" + known):
            return known
    relative = PurePosixPath(frame_file)
    if not relative.is_absolute() and ".." not in relative.parts and frame_file:
        return frame_file
    return None


def plan(diagnosis: DiagnosisReadyPayload, trace: list[str]) -> Reproduction | str:
    """The reproduction the diagnosis allows, or why there is none (said plainly in proof_detail)."""
    frame, exception = diagnosis.reproduction, diagnosis.exception_type
    if frame is None:
        return "the alert carried no local variables for its innermost repository frame"
    if not exception or not _EXCEPTION.match(exception):
        return "the alert names no exception type to expect"
    function = frame.function
    if "." in function or not function.isidentifier() or any(name in frame.vars for name in _METHOD_MARKERS):
        return f"the failing frame {function!r} is not a top-level function (a method, a lambda or module code)"
    if not all(_plain(value) for value in frame.vars.values()):
        return "a captured variable of the failing frame is not a plain JSON value"
    captured = json.dumps(frame.vars, sort_keys=True)
    if redact(captured) != captured:  # the call becomes a committed test: no credentials in a pull request
        return "a captured variable of the failing frame looks like a secret, so it is not replayed or committed"
    file = _repository_file(frame.file, trace)
    if file is None or not file.endswith(".py"):
        return f"the failing frame's file {frame.file!r} is not a Python file of the repository"
    return Reproduction(file=file, function=function, arguments=dict(frame.vars), exception_type=exception)


# The same loader and call in the script and in the regression test, so both behave alike.
_HELPERS = '''\
import asyncio
import importlib
import inspect
import json
import sys
from pathlib import Path

FILE = {file!r}
FUNCTION = {function!r}
EXPECTED = {expected!r}
ARGUMENTS = json.loads({arguments!r})


def _load(root):
    """Import FILE's module from `root`, the package root first on sys.path (src/ layout or the top)."""
    path = (root / FILE).resolve()
    base = path.parent
    parts = [] if path.stem == "__init__" else [path.stem]
    while (base / "__init__.py").is_file():
        parts.insert(0, base.name)
        base = base.parent
    sys.path.insert(0, str(base))
    return importlib.import_module(".".join(parts))


def _arguments(function):
    """The captured values of the function's parameters (and nothing else), as it takes them."""
    params = list(inspect.signature(function).parameters.values())
    star = next((p for p in params if p.kind is p.VAR_POSITIONAL), None)
    extra = ARGUMENTS.get(star.name, []) if star is not None else []
    if not isinstance(extra, list):
        raise LookupError(f"*{{star.name}} was not captured as a list")
    args, kwargs, skipped, positional = [], {{}}, False, bool(extra)
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            if skipped and extra:
                raise LookupError("a positional argument before *args was not captured")
            args.extend(extra)
            positional = False
        elif p.kind is p.VAR_KEYWORD:
            more = ARGUMENTS.get(p.name, {{}})
            if not isinstance(more, dict):
                raise LookupError(f"**{{p.name}} was not captured as a mapping")
            kwargs.update(more)
        elif p.name not in ARGUMENTS:
            if p.default is p.empty:
                raise LookupError(f"argument {{p.name!r}} was not captured")
            skipped = skipped or p.kind is p.POSITIONAL_ONLY or (positional and p.kind is p.POSITIONAL_OR_KEYWORD)
        elif p.kind is p.POSITIONAL_ONLY or (positional and p.kind is p.POSITIONAL_OR_KEYWORD):
            if skipped:
                raise LookupError(f"argument {{p.name!r}} follows one that was not captured")
            args.append(ARGUMENTS[p.name])
        else:
            kwargs[p.name] = ARGUMENTS[p.name]
    return args, kwargs


def _function(root):
    function = getattr(_load(root), FUNCTION, None)
    if not inspect.isfunction(function):
        raise LookupError(f"{{FUNCTION}} is not a top-level function of {{FILE}}")
    return function


def _invoke(function, args, kwargs):
    result = function(*args, **kwargs)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isgenerator(result):
        return list(result)
    return result


def _matches(exc):
    kind = type(exc)
    return EXPECTED in {{kind.__name__, kind.__qualname__, f"{{kind.__module__}}.{{kind.__qualname__}}"}}
'''

_SCRIPT_MAIN = """

def main():
    try:
        function = _function(Path.cwd())
        args, kwargs = _arguments(function)
    except BaseException as exc:
        print("{marker} impossible:", type(exc).__name__, exc)
        sys.exit({impossible})
    try:
        _invoke(function, args, kwargs)
    except BaseException as exc:
        raised = "raised" if _matches(exc) else "raised something else:"
        print("{marker}", raised, type(exc).__name__, str(exc)[:300])
        sys.exit({raised} if _matches(exc) else {other})
    print("{marker} returned")
    sys.exit({returned})


main()
"""

_TEST = """

def test_{function}_does_not_raise_{slug}_again():
    function = _function(Path(__file__).resolve().parents[1])
    args, kwargs = _arguments(function)
    try:
        _invoke(function, args, kwargs)
    except Exception as exc:
        assert not _matches(exc), f"{{FUNCTION}}() raised {{type(exc).__name__}} again: {{exc}}"
"""


def _helpers(r: Reproduction) -> str:
    arguments = json.dumps(r.arguments, sort_keys=True)
    return _HELPERS.format(file=r.file, function=r.function, expected=r.exception_type, arguments=arguments)


def script(r: Reproduction) -> str:
    """The script run from the worktree's root; its exit code says what the call did (EXIT_*)."""
    main = _SCRIPT_MAIN.format(
        marker=MARKER, impossible=EXIT_IMPOSSIBLE, raised=EXIT_RAISED, other=EXIT_OTHER, returned=EXIT_RETURNED
    )
    return _helpers(r) + main


def regression_test(r: Reproduction, incident_id: str) -> tuple[str, str]:
    """The regression test's path in the repository and its text (pytest style)."""
    slug = re.sub(r"\W", "_", r.exception_type.rsplit(".", 1)[-1]).lower()
    header = (
        f'"""Regression test added by pagerpatch for incident {incident_id}: {r.function}() in {r.file} raised '
        f'{r.exception_type} with the arguments the alert captured; it must not raise it again."""\n\n'
    )
    test = _TEST.format(function=r.function, slug=slug)
    return f"tests/test_pagerpatch_regression_{incident_id[:8]}.py", header + _helpers(r) + test


def outcome_of(result: SandboxResult) -> tuple[ReproductionOutcome, str]:
    """What the script's run says: its outcome and the line it printed about it."""
    said = next((line for line in reversed(result.output.splitlines()) if line.startswith(MARKER)), "")
    detail = said.removeprefix(MARKER).strip() or result.summary
    if result.timed_out:
        return "inconclusive", f"the call timed out after {result.duration_s:.0f}s"
    codes: dict[int | None, ReproductionOutcome] = {
        EXIT_RAISED: "raised",
        EXIT_OTHER: "other",
        EXIT_RETURNED: "returned",
        EXIT_IMPOSSIBLE: "impossible",
    }
    return codes.get(result.exit_code, "inconclusive"), detail


def check(
    r: Reproduction, at_base: tuple[ReproductionOutcome, str], after: tuple[ReproductionOutcome, str] | None
) -> ReproductionCheck:
    """Proved when the call raises the alert's exception type at the base and not after the revert."""
    call = f"{r.function}() with the captured arguments"
    base_outcome, base_detail = at_base
    if base_outcome != "raised":
        return ReproductionCheck(False, f"at the base commit {call} did not raise {r.exception_type} ({base_detail})")
    if after is None:
        return ReproductionCheck(False, f"{call} raises {r.exception_type} at the base commit; not run after")
    outcome, detail = after
    if outcome in ("returned", "other"):
        how = "returns normally" if outcome == "returned" else f"no longer raises it ({detail})"
        return ReproductionCheck(
            True, f"reproduced: {call} raises {r.exception_type} at the base commit and {how} with the revert"
        )
    if outcome == "raised":
        return ReproductionCheck(False, f"{call} still raises {r.exception_type} with the revert")
    return ReproductionCheck(False, f"with the revert the reproduction was {outcome} ({detail})")

"""Which lines of a frame matter: the code around a failing line whose history can explain the failure.

The enclosing definition of a Python line is the nearest less-indented `def`/`async def`/`class` above it
(decorators included); other languages use the nearest less-indented function-looking line within
WINDOW_ABOVE lines; failing that, a window of WINDOW_ABOVE lines above to WINDOW_BELOW below. A commit that
deleted a guard above the failing line (`if not values: return 0.0`) leaves the failing line blamed on an old
commit; only this region's history shows it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MAX_FUNCTION_LINES = 200  # how far above the failing line a Python `def` is looked for
WINDOW_ABOVE = 15  # without an enclosing definition: this many lines above the failing line...
WINDOW_BELOW = 3  # ...to this many below it
PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")

RegionKind = Literal["function", "class", "window"]

_PY_DEFINITION = re.compile(r"^[ \t]*(?:(?:async[ \t]+)?def|(?P<cls>class))[ \t]+(?P<name>[^\W\d]\w*)")
_CONTROL_WORDS = (
    "if|else|elif|elsif|unless|for|foreach|while|until|do|switch|case|catch|try|finally|with|return|throw|"
    "synchronized|using|lock|when|match|loop|unsafe|defer|go|select|new|await|yield"
)
# A line that starts a function in a braced or keyword language: `function f(`, `func (c *Cart) Total(`,
# `fn`, `fun`, `def`, `sub`, an arrow function, or a signature `name(args) ... {` (not `if (...) {`).
_OTHER_DEFINITION = re.compile(
    rf"^(?![ \t]*(?:[}})\]]|(?:{_CONTROL_WORDS})\b))[ \t]*(?:"
    r"(?:[\w$@<>\[\],.?*&:]+[ \t]+)*(?:function|func|fn|fun|def|sub)\b"
    r"|.*=>[ \t]*\{?[ \t]*$"
    r"|[^=;]*[\w$>\]][ \t]*\([^;]*\)[^;=]*\{[ \t]*$"
    r")"
)
_OTHER_SIGNATURE = re.compile(
    rf"^(?![ \t]*(?:[}})\]]|(?:{_CONTROL_WORDS})\b))[ \t]*[^=;]*[\w$>\]][ \t]*\([^;]*\)[^;={{]*$"
)
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")


@dataclass(frozen=True, slots=True)
class Region:
    """Lines `start`..`end` (1-based, inclusive) around a failing line: its enclosing definition, or a window."""

    start: int
    end: int
    kind: RegionKind
    name: str | None = None  # the enclosing definition's name, when known

    def describe(self) -> str:
        span = f"lines {self.start}–{self.end}"
        if self.kind == "window":
            return f"the code around it ({span})"
        if self.name:
            return f"the enclosing {self.kind} `{self.name}` ({span})"
        return f"the enclosing {self.kind} ({span})"


def git_lines(text: str) -> list[str]:
    """A file's lines as git numbers them: split on newlines only (str.splitlines also splits on form feeds...)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def is_python_source(file: str) -> bool:
    """Whether `file` is Python by its name (a trace of another language can still pass through Python files)."""
    return file.endswith(PYTHON_SUFFIXES)


def enclosing_region(lines: Sequence[str], line: int, *, python: bool, function: str | None = None) -> Region:
    """The code around `line` (1-based) of a file's `lines` whose history can explain a failure on that line.

    From the enclosing definition (decorators included) down to `line`; without one, a window of
    WINDOW_ABOVE lines above to WINDOW_BELOW below that stays out of sibling definitions. Python's
    enclosing `def` is found by indentation; other languages' by a function-looking, less-indented line,
    named after `function` (the frame's function) when that name appears on it.
    """
    if not 1 <= line <= len(lines):
        raise ValueError(f"line {line} is outside a file of {len(lines)} lines")
    idx = line - 1
    found = _enclosing_definition(lines, idx, python=python)
    if found is None:
        return _window(lines, idx, python=python)
    start, kind, name = found
    if python:
        indent = _indent(lines[start])
        while start > 0 and lines[start - 1].lstrip().startswith("@") and _indent(lines[start - 1]) == indent:
            start -= 1
    elif function:
        words = set(_IDENTIFIER.findall(lines[start]))
        name = next((w for w in reversed(_IDENTIFIER.findall(function)) if w in words), None)
    return Region(start + 1, line, kind, name)


def _enclosing_definition(lines: Sequence[str], idx: int, *, python: bool) -> tuple[int, RegionKind, str | None] | None:
    """Index, kind and (Python) name of the definition enclosing `lines[idx]`, scanning up by indentation."""
    own = _definition(lines[idx], python=python)
    if own is not None:  # the failing line is itself a definition (a default argument, a decorator call)
        return idx, *own
    threshold = _indent(lines[idx])
    limit = MAX_FUNCTION_LINES if python else WINDOW_ABOVE
    for i in range(idx - 1, max(-1, idx - 1 - limit), -1):
        if threshold == 0:
            break
        text = lines[i]
        if _is_blank_or_comment(text, python=python):
            continue
        indent = _indent(text)
        if indent >= threshold:
            continue
        definition = _definition(text, python=python)
        if definition is not None:
            return i, *definition
        if not python and text.strip() == "{":  # Allman braces: the signature is on the line above
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0 and _indent(lines[j]) == indent and _OTHER_SIGNATURE.match(lines[j]):
                return j, "function", None
        threshold = indent  # an enclosing block (if, for, with...): its definition is further out still
    return None


def _window(lines: Sequence[str], idx: int, *, python: bool) -> Region:
    """WINDOW_ABOVE lines above `lines[idx]` to WINDOW_BELOW below, stopping short of sibling definitions."""
    threshold = _indent(lines[idx])
    start = idx
    for i in range(idx - 1, max(-1, idx - 1 - WINDOW_ABOVE), -1):
        text = lines[i]
        if text.strip() and _indent(text) <= threshold and _definition(text, python=python) is not None:
            # a sibling definition: its body is other code, so the window starts after it
            indent, start = _indent(text), i + 1
            while start < idx and (not lines[start].strip() or _indent(lines[start]) > indent):
                start += 1
            break
        start = i
    end = idx
    for k in range(idx + 1, min(len(lines), idx + 1 + WINDOW_BELOW)):
        text = lines[k]
        if text.strip() and (_indent(text) < threshold or _definition(text, python=python) is not None):
            break
        end = k
    while start < idx and not lines[start].strip():
        start += 1
    while end > idx and not lines[end].strip():
        end -= 1
    return Region(start + 1, end + 1, "window")


def _definition(text: str, *, python: bool) -> tuple[RegionKind, str | None] | None:
    if python:
        match = _PY_DEFINITION.match(text)
        if match is None:
            return None
        return ("class" if match["cls"] else "function"), match["name"]
    return ("function", None) if _OTHER_DEFINITION.match(text) else None


def _is_blank_or_comment(text: str, *, python: bool) -> bool:
    stripped = text.strip()
    if not stripped:
        return True
    return stripped.startswith("#") if python else stripped.startswith(("//", "/*", "*", "#", "--"))


def _indent(text: str) -> int:
    expanded = text.expandtabs(8)
    return len(expanded) - len(expanded.lstrip(" \t"))

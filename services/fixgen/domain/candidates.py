"""Which commits fixgen tries to revert, and why a revert is set aside before any test runs.

A revert is refused when it conflicts, changes nothing, touches none of the stack trace's files, changes only
tests, or changes only non-code lines (Python: AST-equal after stripping docstrings; other files: only comments,
blank lines or whitespace; documentation files never count as code).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from pagerpatch.git.paths import is_test_path
from pagerpatch.git.workspace import RevertResult
from schemas.events import DiagnosisReadyPayload, SuspectCommit
from services.fixgen.domain.payloads import conflict_reason

__all__ = [
    "candidates_of",
    "change_refusal",
    "python_code_equal",
    "python_files",
    "removed_test_defs",
    "revert_refusal",
    "trace_files",
]

_PYTHON = (".py", ".pyi")
_DOCS = (".md", ".rst", ".txt", ".adoc")
_COMMENT_PREFIXES = ("#", "//", "/*", "*", "--", "<!--")
_TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(")
_SHOWN_FILES = 5


def candidates_of(diagnosis: DiagnosisReadyPayload) -> list[SuspectCommit]:
    """The suspect first, then the diagnosis's other candidates in order, each commit once."""
    seen: set[str] = set()
    found: list[SuspectCommit] = []
    for commit in (diagnosis.suspect_commit, *diagnosis.candidates):
        if commit is not None and commit.sha not in seen:
            seen.add(commit.sha)
            found.append(commit)
    return found


def trace_files(diagnosis: DiagnosisReadyPayload) -> list[str]:
    """The repository files of the stack trace's frames (the diagnosis's evidence), in order, each once."""
    return list(dict.fromkeys(evidence.file for evidence in diagnosis.evidence))


def revert_refusal(sha: str, result: RevertResult) -> str:
    """Why a revert git would not make is set aside: a conflict, or nothing left to revert."""
    short = sha[:12]
    if not result.conflicted_files and "nothing to commit" in result.error:
        return f"reverting {short} changes nothing at the base commit (its change is already undone)"
    return conflict_reason(sha, result.error)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """Docstrings removed; a class or function left empty gets `pass` (what a docstring-only body is rewritten to),
    unlike `pagerpatch.traces.symbols.without_docstrings`, which compares blame regions and keeps bodies empty."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                # A module may be empty; a class or function body needs a statement (`pass` is what is left).
                node.body = body[1:] if isinstance(node, ast.Module) else body[1:] or [ast.Pass()]
    return tree


def python_code_equal(before: str | None, after: str | None) -> bool:
    """Whether two versions of a Python file are the same program once docstrings, comments and layout go."""
    try:
        trees = [_without_docstrings(ast.parse(text or "")) for text in (before, after)]
    except (SyntaxError, ValueError):
        return False
    return ast.dump(trees[0]) == ast.dump(trees[1])


def _code_tokens(lines: Iterable[str]) -> str:
    """The lines that are code (not blank, not a comment), whitespace removed, run together."""
    kept = (line.strip() for line in lines)
    return "".join("".join(line.split()) for line in kept if line and not line.startswith(_COMMENT_PREFIXES))


def _parse(patch: str) -> PatchSet | None:
    try:
        return PatchSet(patch)
    except UnidiffParseError:
        return None


def _path(patched: object) -> str:
    path = str(getattr(patched, "path", ""))
    return path[2:] if path.startswith(("a/", "b/")) else path


def _changed_lines(patch: str) -> dict[str, tuple[list[str], list[str]]]:
    """Per changed file: its removed and added lines."""
    parsed = _parse(patch)
    changes: dict[str, tuple[list[str], list[str]]] = {}
    for patched in parsed or ():
        removed, added = changes.setdefault(_path(patched), ([], []))
        for hunk in patched:
            for line in hunk:
                if line.is_removed:
                    removed.append(line.value)
                elif line.is_added:
                    added.append(line.value)
    return changes


def _is_code_change(path: str, lines: tuple[list[str], list[str]], before: Mapping[str, str | None],
                    after: Mapping[str, str | None]) -> bool:  # fmt: skip
    if path.endswith(_PYTHON):
        if path not in before or path not in after:
            return True  # unreadable: assume it matters
        return not python_code_equal(before[path], after[path])
    if path.endswith(_DOCS) or path.startswith("docs/"):
        return False
    removed, added = lines
    return _code_tokens(removed) != _code_tokens(added)


def python_files(patch: str) -> list[str]:
    """The changed Python files outside tests: whose two versions `change_refusal` compares."""
    return [path for path in _changed_lines(patch) if path.endswith(_PYTHON) and not is_test_path(path)]


def _listed(files: Sequence[str]) -> str:
    shown = ", ".join(files[:_SHOWN_FILES])
    return shown + (f" (and {len(files) - _SHOWN_FILES} more)" if len(files) > _SHOWN_FILES else "")


def change_refusal(
    sha: str,
    patch: str,
    trace: Sequence[str],
    before: Mapping[str, str | None],
    after: Mapping[str, str | None],
) -> str | None:
    """Why this revert cannot be the fix (None when it may be): judged on its diff and the files' two versions.

    `before` and `after` hold the changed Python files at the base commit and with the revert (None: absent).
    """
    short = sha[:12]
    changes = _changed_lines(patch)
    files = list(changes)
    if not files:
        return f"reverting {short} changes nothing at the base commit (an empty diff)"
    if trace and not set(files) & set(trace):
        return (
            f"reverting {short} touches no file on the stack trace's path ({_listed(list(trace))}); "
            f"it changes {_listed(files)}"
        )
    production = [path for path in files if not is_test_path(path)]
    if not production:
        return f"reverting {short} changes only tests ({_listed(files)}), which cannot fix the failure"
    if not any(_is_code_change(path, changes[path], before, after) for path in production):
        besides = " besides tests" if len(production) < len(files) else ""
        return (
            f"reverting {short} changes only comments, docstrings, blank lines or formatting{besides} "
            f"({_listed(production)}): the program stays the same, so it cannot fix the failure"
        )
    return None


def removed_test_defs(patch: str) -> list[str]:
    """`file::test_name` for each test function the patch removes from a test file (and does not add back)."""
    removed: list[str] = []
    for path, (old, new) in _changed_lines(patch).items():
        if not is_test_path(path):
            continue
        added = {m.group(1) for line in new if (m := _TEST_DEF.match(line))}
        removed += [f"{path}::{m.group(1)}" for line in old if (m := _TEST_DEF.match(line)) and m.group(1) not in added]
    return removed

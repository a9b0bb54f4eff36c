"""Whether a commit changed a piece of code only cosmetically: the same program before and after it.

Python: the enclosing function (all definitions of that name), or the whole module, compares equal as an
`ast.dump` -- comments, blank lines, black-style rewrapping and quote styles are cosmetic; once docstrings are
stripped too, docstring edits are. A renamed variable is a different program. Other languages (and Python
that does not parse): the same token sequence once whitespace and comments are dropped.
Cosmetic commits never cause a failure, so a candidate commit whose change is cosmetic is set aside.
"""

from __future__ import annotations

import ast
import re

from pagerpatch.traces import symbols
from services.diagnosis.domain.region import is_python_source

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

# Languages whose comments start with `#`; elsewhere `#` is code (C's preprocessor, Rust's attributes) and comments
# are `//` and `/* */` (which are code here: Python's floor division, a shell glob).
_HASH_COMMENTS = {"py", "pyi", "pyw", "rb", "sh", "bash", "zsh", "pl", "pm", "r", "ex", "exs", "yml", "yaml", "toml",
                  "cfg", "ini", "conf", "coffee", "tf", "nim", "jl", "cr"}  # fmt: skip
_STRING = r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`(?:\\.|[^`\\])*`)"""
_REST = r"|(?P<space>\s+)|(?P<word>\w+)|(?P<other>.)"
_HASH_TOKENS = re.compile(_STRING + r"|(?P<comment>\#[^\n]*)" + _REST, re.S)
_SLASH_TOKENS = re.compile(_STRING + r"|(?P<comment>/\*.*?\*/|//[^\n]*)" + _REST, re.S)


def cosmetic_change(before: str | None, after: str | None, *, file: str, function: str | None = None) -> str | None:
    """Why the change from `before` to `after` (`file` at a commit's parent and at the commit) is only cosmetic
    where it matters -- in `function` when given and found, else in the whole file -- or None when the program
    changed there (including when either side is missing: a created or deleted file is a real change)."""
    if before is None or after is None or before == after:  # an unchanged file says nothing about the commit
        return None
    name = symbols.bare_function_name(function) if function else None
    if is_python_source(file):
        try:
            return _python_verdict(ast.parse(before), ast.parse(after), file=file, name=name)
        except (SyntaxError, ValueError):
            pass  # Python 2, a template, a half-written file: fall back to tokens
    if _tokens(before, file) == _tokens(after, file):
        return f"only whitespace, comments or formatting changed in {file}"
    return None


def _python_verdict(before: ast.Module, after: ast.Module, *, file: str, name: str | None) -> str | None:
    """The verdict on two parsed versions of a Python file, for the definitions named `name` or the module."""
    old, new, where = _scope(before, name), _scope(after, name), name or file
    if name and not new:  # the function is not there (renamed since): judge the whole file
        old, new, where = [before], [after], file
    if not old:  # the commit created the definition: new code
        return None
    if _dump(old) == _dump(new):
        return f"only comments or formatting changed in {where}"
    if _dump([symbols.without_docstrings(n) for n in old]) == _dump([symbols.without_docstrings(n) for n in new]):
        return f"only docstrings changed in {where}"
    return None


def _scope(tree: ast.Module, name: str | None) -> list[ast.AST]:
    """The nodes a verdict compares: every definition named `name` (in source order), or the module itself."""
    if name is None:
        return [tree]
    found: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = [
        n for n in ast.walk(tree) if isinstance(n, _DEFINITIONS) and n.name == name
    ]
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    return list(found)


def _dump(nodes: list[ast.AST]) -> list[str]:
    return [ast.dump(n) for n in nodes]


def _tokens(text: str, file: str) -> list[str]:
    """`text` as tokens, without whitespace and comments (of the comment syntax `file`'s language has)."""
    ext = file.rsplit(".", 1)[-1].lower() if "." in file else ""
    pattern = _HASH_TOKENS if ext in _HASH_COMMENTS else _SLASH_TOKENS
    return [m.group() for m in pattern.finditer(text) if m.lastgroup not in ("space", "comment")]

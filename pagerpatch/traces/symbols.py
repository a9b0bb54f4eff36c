"""Where a function is defined: name extraction from stack-frame spellings and per-language definition patterns.

Pure text heuristics (no parser per language): good enough to confirm that a frame's function exists in a file.
The language knowledge lives here, not in the git primitives: callers read a file and ask `defines`.
"""

from __future__ import annotations

import ast
import re

_WITH_DOCSTRING = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def is_docstring(statement: ast.stmt) -> bool:
    """Whether a statement is a docstring (a bare string literal, as the first statement of a body)."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def without_docstrings(node: ast.AST) -> ast.AST:
    """`node` with the docstring of every module, class and function in it removed (in place): two Python
    sources whose trees are equal this way differ only in docstrings, comments and formatting."""
    for inner in list(ast.walk(node)):
        if isinstance(inner, _WITH_DOCSTRING) and inner.body and is_docstring(inner.body[0]):
            inner.body = inner.body[1:]
    return node


def bare_function_name(function: str) -> str | None:
    """`Object.checkout [as run]`, `main.(*Cart).Total`, `com.x.Pricing.lambda$apply$0` -> the defined name."""
    text = re.sub(r"\[[^\]]*\]", "", function).strip()  # V8 `[as alias]`, Go type parameters `[...]`
    text = re.sub(r"^(?:async|new|static)\s+", "", text).removesuffix("()")
    if "lambda$" in text:  # javac's synthetic lambda$<enclosing>$<n>
        text = text.split("lambda$", 1)[1].split("$", 1)[0]
    parts = [p for p in re.split(r"[.:/]+", text) if p]
    # Go closures (`main.run.func1`) and numbered anonymous parts point at their enclosing function.
    while len(parts) > 1 and re.fullmatch(r"func\d+|\d+", parts[-1]):
        parts.pop()
    if not parts:
        return None
    name = parts[-1]
    if name in ("<init>", "constructor") and len(parts) > 1:
        name = parts[-2]
    name = name.strip("()*")
    return name if re.fullmatch(r"[A-Za-z_$][\w$]*", name) else None


def defines(text: str, file: str, function: str) -> bool:
    """True when `text`, the source of `file`, defines `function` as a stack frame spells it."""
    name = bare_function_name(function)
    return name is not None and any(p.search(text) for p in definition_patterns(file, name))


def definition_patterns(file: str, name: str) -> list[re.Pattern[str]]:
    """Patterns that match a definition of `name` in `file`'s language (by extension; a generic set otherwise)."""
    n = re.escape(name)
    ext = file.rsplit(".", 1)[-1].lower() if "." in file else ""
    python = [rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{n}[ \t]*\(", rf"^[ \t]*class[ \t]+{n}\b"]
    javascript = [
        rf"\bfunction\b[ \t]*\*?[ \t]*{n}[ \t]*\(",
        rf"\b{n}[ \t]*[:=][ \t]*(?:async\b[ \t]*)?(?:function\b|\([^)]*\)[ \t]*=>|[\w$]+[ \t]*=>)",
        rf"^[ \t]*(?:(?:static|async|get|set|public|private|protected)[ \t]+)*\*?{n}[ \t]*\([^)]*\)"
        rf"[ \t]*(?::[^{{]*)?\{{",
        rf"^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?class[ \t]+{n}\b",
    ]
    java_like = [
        rf"^[ \t]*(?:@\w+[ \t]+)*(?:(?:public|private|protected|static|final|abstract|synchronized|native|"
        rf"override|open|internal|suspend|inline|virtual|async)[ \t]+)*(?:[\w.<>\[\],?]+[ \t]+)?"
        rf"(?:fun[ \t]+)?{n}[ \t]*\([^;\n]*$",
        rf"\b(?:class|interface|enum|record|object)[ \t]+{n}\b",
    ]
    go = [rf"^func[ \t]+(?:\([^)]*\)[ \t]*)?{n}[ \t]*[\[(]"]
    generic = [
        rf"\b(?:def|function|func|fn|sub|proc)\b[ \t]*(?:\([^)]*\)[ \t]*)?{n}\b",
        rf"\bclass[ \t]+{n}\b",
    ]
    by_ext = {
        "py": python,
        "js": javascript,
        "mjs": javascript,
        "cjs": javascript,
        "jsx": javascript,
        "ts": javascript,
        "tsx": javascript,
        "java": java_like,
        "kt": java_like,
        "scala": java_like,
        "cs": java_like,
        "go": go,
    }
    return [re.compile(p, re.MULTILINE) for p in by_ext.get(ext, generic)]

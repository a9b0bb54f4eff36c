"""The grounding guard: every file, line, quote, symbol and commit a report names is checked against the repository
at the base commit, and what fails never reaches diagnosis.ready (docs/investigation.md).

Checked: each evidence item (file exists; line exists; the quote matches that line, or the file when no line is
given; the symbol is defined in that file -- Python by `ast`, other languages by the definition patterns of
`pagerpatch.traces.symbols`; the commit is in the base's history), the suspect commit, and the names written in
free text (summary, root cause, next steps, notes): path-like tokens (`shop/pricing.py`, `pricing.py:12`),
`name()` identifiers and hex commit shas. Pure: the repository is reached only through a `SourceView`.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from pagerpatch.traces import symbols
from schemas.investigation import Claim, Grounding
from services.diagnosis.domain.investigation import ReportDraft

Kind = Literal["file", "line", "quote", "symbol", "commit"]
UNVERIFIED = "[unverified]"
SOURCE_EXTENSIONS = (
    "py|pyi|js|mjs|cjs|jsx|ts|tsx|go|java|kt|kts|scala|rb|rs|c|h|cc|cpp|hpp|cs|php|swift|m|sql|sh|bash|"
    "yaml|yml|json|toml|cfg|ini|conf|md|rst|txt|html|css|scss|vue|tf|proto|gradle|xml|properties|lock|env"
)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_PATH = re.compile(rf"(?<![\w/.@-])((?:[\w.-]+/)*[\w-][\w.-]*\.(?:{SOURCE_EXTENSIONS}))(?::(\d+))?(?![\w/])")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(\)")
# A name the text itself calls a function, method or class ("the `apply_discount` function", "method Cart.total"):
# in backticks, or looking like code (an underscore, a dot or camelCase).
_IDENT = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_KIND = r"(?:function|method|class|def)"
_NAMED = (  # the kind before the name, the name before the kind: (backticked, plain)
    re.compile(rf"\b{_KIND}\s+(?:`({_IDENT})`|({_IDENT}))(?![\w(])"),
    re.compile(rf"(?:`({_IDENT})`|(?<![\w.`])({_IDENT}))\s+{_KIND}\b"),
)
_SHA = re.compile(r"(?<![\w-])(?<!0x)([0-9a-f]{7,40})(?![\w-])")
# Names that are the language's, not the repository's: never a claim about the code.
_BUILTIN_NAMES = frozenset(
    dir(builtins)
    + [n for t in (str, bytes, dict, list, set, tuple, int, float, object) for n in dir(t)]
    + ["print", "require", "console", "log", "then", "catch", "parse", "stringify", "main", "init", "fmt"]
)


class SourceView(Protocol):
    """The repository at the base commit, as the guard asks about it."""

    def files(self) -> frozenset[str]:
        """Every file path in the base commit's tree."""
        ...  # pragma: no cover

    def text(self, file: str) -> str | None:
        """The text of `file` at the base commit; None when it is not there."""
        ...  # pragma: no cover

    def commit(self, sha: str) -> str | None:
        """The full sha `sha` names when it is a commit in the base commit's history (the base included)."""
        ...  # pragma: no cover

    def mentioning(self, word: str) -> list[str]:
        """Files whose text contains `word` as a word (a cheap prefilter for where it may be defined)."""
        ...  # pragma: no cover


@dataclass(frozen=True)
class Failure:
    kind: Kind
    where: str  # "evidence[2]", "root_cause", "suspect_commit"...
    token: str  # the name as the report wrote it
    reason: str

    def describe(self) -> str:
        return f"{self.where}: {self.kind} {self.token!r}: {self.reason}"


@dataclass(frozen=True)
class Checked:
    checked: int
    failures: tuple[Failure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


# ------------------------------------------------------------------ symbols
def python_symbols(text: str) -> set[str] | None:
    """Names a Python source defines (functions, classes, methods as `Class.method` too, module and class level
    assignments); None when it does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    out: set[str] = set()

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out.update({node.name, prefix + node.name})
                walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.Assign | ast.AnnAssign) and not prefix.count(".") > 1:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                out.update(prefix + t.id for t in targets if isinstance(t, ast.Name))
                out.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.If | ast.Try | ast.With):
                walk([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)], prefix)

    walk(tree.body, "")
    return out


def defines_symbol(text: str, file: str, symbol: str) -> bool:
    """Whether `file` (its `text`) defines `symbol`: `name`, `name()`, `Class.method`, `module.name`."""
    name = symbol.strip().removesuffix("()").strip()
    if not name:
        return False
    if file.endswith((".py", ".pyi", ".pyw")):
        names = python_symbols(text)
        if names is not None:
            parts = name.split(".")
            return name in names or ".".join(parts[-2:]) in names or parts[-1] in names
    return symbols.defines(text, file, name)


# ------------------------------------------------------------------ quotes
def _norm(text: str) -> str:
    return " ".join(text.split())


def quote_matches(lines: list[str], quote: str, line: int | None) -> bool:
    """The quote (whitespace-insensitive, `...` ends allowed) is the text of `line` or part of it (a multi-line
    quote: of the lines from `line` on); without a line, it appears somewhere in the file."""
    body = [
        q for q in (ln.strip().strip("…").removesuffix("...").removeprefix("...") for ln in quote.splitlines()) if q
    ]
    if not body:
        return True
    if line is None:
        flat = _norm("\n".join(lines))
        return _norm(" ".join(body)) in flat
    window = lines[line - 1 : line - 1 + len(body)]
    if len(window) < len(body):
        return False
    if len(body) == 1:
        return _norm(body[0]) in _norm(window[0])
    return all(_norm(q) in _norm(w) for q, w in zip(body, window, strict=True))


# ------------------------------------------------------------------ the guard
def check_report(draft: ReportDraft, view: SourceView, known_files: Iterable[str] = ()) -> Checked:
    """Every name in `draft` checked against `view`; `known_files` (the stack's files) are where a `name()` in the
    text is looked for first."""
    failures: list[Failure] = []
    checked = 0
    files = view.files()
    for i, claim in enumerate(draft.evidence):
        n, found = _check_claim(claim, f"evidence[{i}]", view, files)
        checked += n
        failures += found
    if draft.suspect_commit is not None:
        checked += 1
        if view.commit(draft.suspect_commit) is None:
            failures.append(Failure("commit", "suspect_commit", draft.suspect_commit, "not in the base's history"))
    mentioned = {c.file for c in draft.evidence if c.file in files} | set(known_files)
    for where, text in _texts(draft):
        n, found = check_text(text, where, view, files, mentioned)
        checked += n
        failures += found
    return Checked(checked, tuple(_unique(failures)))


def _check_claim(claim: Claim, where: str, view: SourceView, files: frozenset[str]) -> tuple[int, list[Failure]]:
    checks = 1 + sum(x is not None for x in (claim.line, claim.quote, claim.symbol, claim.commit))
    out: list[Failure] = []
    text = view.text(claim.file) if claim.file in files else None
    if text is None:
        return checks, [Failure("file", where, claim.file, "no such file at the base commit")]
    lines = text.splitlines()
    if claim.line is not None and claim.line > len(lines):
        out.append(Failure("line", where, f"{claim.file}:{claim.line}", f"the file has {len(lines)} lines"))
    elif claim.quote is not None and not quote_matches(lines, claim.quote, claim.line):
        at = f"line {claim.line}" if claim.line else "the file"
        out.append(Failure("quote", where, claim.quote[:200], f"does not match {at} of {claim.file}"))
    if claim.symbol is not None and not defines_symbol(text, claim.file, claim.symbol):
        out.append(Failure("symbol", where, claim.symbol, f"not defined in {claim.file}"))
    if claim.commit is not None and view.commit(claim.commit) is None:
        out.append(Failure("commit", where, claim.commit, "not in the base's history"))
    return checks, out


def _texts(draft: ReportDraft) -> list[tuple[str, str]]:
    out = [("summary", draft.summary), ("root_cause", draft.root_cause)]
    out += [(f"next_steps[{i}]", s) for i, s in enumerate(draft.next_steps)]
    out += [(f"would_have_helped[{i}]", s) for i, s in enumerate(draft.would_have_helped)]
    out += [(f"evidence[{i}].note", c.note) for i, c in enumerate(draft.evidence) if c.note]
    return out


def check_text(
    text: str, where: str, view: SourceView, files: frozenset[str], mentioned: set[str]
) -> tuple[int, list[Failure]]:
    """The path-like tokens, `name()` identifiers and commit shas in free text."""
    clean = _UUID.sub(" ", _URL.sub(" ", text))
    checked = 0
    out: list[Failure] = []
    paths: set[str] = set(mentioned)
    for m in _PATH.finditer(clean):
        token, file, line = m.group(0), _resolve(m.group(1), files), m.group(2)
        checked += 1
        if file is None:
            out.append(Failure("file", where, token, "no such file at the base commit"))
            continue
        paths.add(file)
        if line is not None:
            content = view.text(file) or ""
            if not 1 <= int(line) <= len(content.splitlines()):
                out.append(Failure("line", where, token, f"{file} has {len(content.splitlines())} lines"))
    calls = {m.group(1): m.group(0) for m in _CALL.finditer(clean)}
    for m in (m for pattern in _NAMED for m in pattern.finditer(clean)):
        backticked, name = m.group(1) is not None, m.group(1) or m.group(2)
        if (backticked or _code_like(name)) and name not in calls:
            calls[name] = name
    for name, token in calls.items():
        verdict = _check_call(name, view, files, paths)
        if verdict is None:
            continue
        checked += 1
        if not verdict:
            out.append(Failure("symbol", where, token, "defined nowhere in the repository"))
    for m in _SHA.finditer(clean):
        sha = m.group(1)
        if not re.search(r"[a-f]", sha) or not re.search(r"\d", sha):  # a number or a word, not a commit
            continue
        checked += 1
        if view.commit(sha) is None:
            out.append(Failure("commit", where, sha, "not in the base's history"))
    return checked, out


def _code_like(name: str) -> bool:
    return "_" in name or "." in name or re.search(r"[a-z][A-Z]", name) is not None


def _resolve(token: str, files: frozenset[str]) -> str | None:
    """The repository file a path token names: exactly, or as the unique file ending with it."""
    token = token.removeprefix("./").lstrip("/")
    if token in files:
        return token
    matches = [f for f in files if f.endswith("/" + token)]
    return matches[0] if len(matches) == 1 else None


def _check_call(name: str, view: SourceView, files: frozenset[str], paths: set[str]) -> bool | None:
    """True: defined in the repository; False: a name the repository should define but does not; None: not a
    claim about the repository (a builtin, or a library call such as `json.loads()`)."""
    parts = name.split(".")
    bare = parts[-1]
    for file in sorted(paths):
        text = view.text(file)
        if text is not None and defines_symbol(text, file, name):
            return True
    for file in view.mentioning(bare)[:50]:
        text = view.text(file)
        if text is not None and defines_symbol(text, file, name):
            return True
    if bare in _BUILTIN_NAMES and len(parts) <= 2:
        return None
    if len(parts) > 1 and not _repository_name(parts[0], view, files):
        return None  # a qualifier the repository does not know: a library's function
    return False


def _repository_name(name: str, view: SourceView, files: frozenset[str]) -> bool:
    """Whether `name` is a module, package or symbol of the repository."""
    if name in ("self", "this", "cls"):
        return True
    for f in files:
        stem = f.rsplit("/", 1)[-1].split(".", 1)[0]
        if stem == name or f"/{name}/" in f"/{f}":
            return True
    return any(defines_symbol(view.text(f) or "", f, name) for f in view.mentioning(name)[:50])


def _unique(failures: list[Failure]) -> list[Failure]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in failures:
        if (f.kind, f.where, f.token) not in seen:
            seen.add((f.kind, f.where, f.token))
            out.append(f)
    return out


# ------------------------------------------------------------------ what still fails is dropped
def scrub(draft: ReportDraft, failures: Iterable[Failure]) -> ReportDraft:
    """`draft` without what failed: evidence items with a failure dropped, a failed suspect commit removed, failed
    names in text replaced by `[unverified]`."""
    failed = list(failures)
    bad_items = {
        int(f.where.split("[")[1].split("]")[0])
        for f in failed
        if f.where.startswith("evidence[") and "." not in f.where
    }
    symbols_ = {f.token.removesuffix("()") for f in failed if f.kind == "symbol"}
    # a fabricated name goes wherever it is repeated, with or without its call parentheses
    names = {f.token for f in failed} | symbols_ | {f"{s}()" for s in symbols_}
    tokens = sorted(names, key=len, reverse=True)

    def clean(text: str) -> str:
        for token in tokens:
            text = re.sub(rf"(?<![\w/.-]){re.escape(token)}(?![\w/])", UNVERIFIED, text)
        return text

    evidence = [
        c.model_copy(update={"note": clean(c.note)}) for i, c in enumerate(draft.evidence) if i not in bad_items
    ]
    suspect_failed = any(f.where == "suspect_commit" for f in failed)
    return draft.model_copy(
        update={
            "summary": clean(draft.summary),
            "root_cause": clean(draft.root_cause),
            "evidence": evidence,
            "suspect_commit": None if suspect_failed else draft.suspect_commit,
            "next_steps": [clean(s) for s in draft.next_steps],
            "would_have_helped": [clean(s) for s in draft.would_have_helped],
        }
    )


def grounding_of(final: Checked, *, retried: bool) -> Grounding:
    counts = Counter(f.kind for f in final.failures)
    return Grounding(
        checked=final.checked, rejected=len(final.failures), retried=retried, rejected_by_kind=dict(counts)
    )


def lowered_confidence(confidence: float, final: Checked) -> float:
    """Each claim dropped lowers the confidence: by the share of claims rejected, and by a quarter at least."""
    if final.ok:
        return confidence
    share = len(final.failures) / max(final.checked, 1)
    return round(max(0.0, confidence * (1 - share) * 0.75), 3)


def stands(clean: ReportDraft, final: Checked) -> bool:
    """Whether the scrubbed report can stand: verified evidence (or a verified suspect commit) is left, and no
    more names were rejected than verified items are left."""
    kept = len(clean.evidence) + (clean.suspect_commit is not None)
    return kept > 0 and len(final.failures) <= kept

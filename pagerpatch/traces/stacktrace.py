"""Stack-trace parsing (Python, JavaScript/V8, Java, Go, Ruby) and mapping of frames to repository files.

Pure functions: text in, values out. Frames are always in call order, the innermost (where the
exception was raised) last, whatever order the language prints them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pagerpatch.traces.frames import Frame, Language, ParsedTrace, TraceParser

__all__ = ["Frame", "Language", "ParsedTrace", "TraceParser", "map_frames_to_repo", "parse_trace"]

MAX_TRACE_CHARS = 200_000  # alerts are size-limited upstream; this keeps parsing linear and bounded


# ---------------------------------------------------------------- Python

_PY_HEADER = "Traceback (most recent call last):"
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+?))?\s*$')
_PY_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::[ \t]?(?P<msg>.*))?$")
_PY_CHAIN_MARKERS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


class PythonParser:
    """CPython tracebacks, including chained ones (the last exception is the one reported)."""

    language: Language = "python"

    def detect(self, text: str) -> bool:
        return _PY_HEADER in text

    def parse(self, text: str) -> ParsedTrace | None:
        lines = _strip_log_prefix(text[:MAX_TRACE_CHARS].splitlines(), _PY_HEADER)
        starts = [i for i, line in enumerate(lines) if line.strip().endswith(_PY_HEADER)]
        # Chained exceptions print the cause first; the last block is the exception that escaped.
        for start in reversed(starts):
            parsed = self._parse_block(lines[start + 1 :])
            if parsed is not None:
                return parsed
        return None

    def _parse_block(self, lines: list[str]) -> ParsedTrace | None:
        frames: list[Frame] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            match = _PY_FRAME.match(line)
            if match:
                context = None
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                if nxt.startswith("    ") and not _PY_FRAME.match(nxt) and not _is_caret_line(nxt):
                    context = nxt.strip()
                    i += 1
                frames.append(Frame(match["file"], int(match["line"]), match["func"], context=context))
            elif line.strip() and not line.startswith((" ", "\t")):
                exc = _PY_EXCEPTION.match(line.strip())
                if exc is None or exc["type"] == "Traceback":
                    return None
                message = [exc["msg"] or ""]
                for cont in lines[i + 1 :]:
                    if not cont.strip() or cont.strip() in _PY_CHAIN_MARKERS or _PY_HEADER in cont:
                        break
                    message.append(cont)
                return ParsedTrace("python", exc["type"], "\n".join(message).strip(), tuple(frames))
            i += 1
        return None


def _is_caret_line(line: str) -> bool:
    """Python 3.11+ position markers such as `    ~~~~~~~^^^^^^`."""
    stripped = line.strip()
    return bool(stripped) and set(stripped) <= {"^", "~", " ", "-"}


def _strip_log_prefix(lines: list[str], header: str) -> list[str]:
    """Remove a log prefix (`2024-06-03T10:00:01Z app[web.1]: `) that precedes every line of the trace."""
    for start, line in enumerate(lines):
        idx = line.find(header)
        if idx < 0:
            continue
        prefix = line[:idx]
        if prefix.strip() and all(not rest or rest.startswith(prefix) for rest in lines[start:]):
            return [rest.removeprefix(prefix) for rest in lines]
        return lines
    return lines


# ---------------------------------------------------------------- JavaScript (V8: Node, Chrome, Deno)

_JS_FRAME = re.compile(r"^\s*at (?:(?P<func>.+?) \()?(?P<file>[^()]+?):(?P<line>\d+):(?P<col>\d+)\)?\s*$")
_JS_ANY_AT = re.compile(r"^\s*at \S")
_JS_NATIVE_FILES = frozenset({"<anonymous>", "native", "[native code]", "?"})
_JS_ERROR = re.compile(
    r"^\s*(?:Uncaught\s+)?(?:\[?(?P<type>[A-Za-z_$][\w$.]*(?:Error|Exception)|Error)\]?)(?:\s*\[[\w_]+\])?"
    r"(?::\s*(?P<msg>.*))?$"
)


class JavaScriptParser:
    """V8 `Error.stack` text: `Type: message` then `    at fn (file:line:col)` lines, innermost first."""

    language: Language = "javascript"

    def detect(self, text: str) -> bool:
        return any(_JS_FRAME.match(line) for line in text[:MAX_TRACE_CHARS].splitlines())

    def parse(self, text: str) -> ParsedTrace | None:
        lines = text[:MAX_TRACE_CHARS].splitlines()
        first_at = next((i for i, line in enumerate(lines) if _JS_ANY_AT.match(line)), None)
        if first_at is None:
            return None
        exc_type, message = "Error", ""
        for line in reversed(lines[:first_at]):
            match = _JS_ERROR.match(line)
            if match:
                exc_type, message = match["type"], (match["msg"] or "").strip()
                break
        frames: list[Frame] = []
        for line in lines[first_at:]:
            match = _JS_FRAME.match(line)
            if match and match["file"].strip() not in _JS_NATIVE_FILES:
                func = match["func"]
                frames.append(Frame(match["file"], int(match["line"]), func, column=int(match["col"])))
            elif not _JS_ANY_AT.match(line) and line.strip():
                break  # the end of this stack
            # An `at` frame without a location is native (`at Array.map (<anonymous>)`) and skipped; so is one
            # whose location is a placeholder, as Sentry renders the same frame (`<anonymous>:0:0`).
        if not frames:
            return None
        return ParsedTrace("javascript", exc_type, message, tuple(reversed(frames)))


# ---------------------------------------------------------------- Java (and other JVM languages)

_JAVA_FRAME = re.compile(
    r"^\s*at (?:[\w.$-]+(?:@[\w.-]+)?/{1,2})?(?P<cls>[\w$.]+)\.(?P<method>[\w$<>]+)"
    r"\((?P<src>[^:()]*)(?::(?P<line>\d+))?\)\s*$"
)
# The type is usually package-qualified; Sentry sends the bare class (its package travels separately), so a bare
# name is accepted too: a line is only an exception when frames follow it.
_JAVA_EXCEPTION = re.compile(
    r"^(?:Exception in thread \"[^\"]*\"\s+|Caused by:\s+)?(?P<type>[a-zA-Z_$][\w$]*(?:\.[\w$]+)*)(?::\s*(?P<msg>.*))?$"
)
_JAVA_MORE = re.compile(r"^\s*\.\.\. (?P<n>\d+) (?:more|common frames omitted)\s*$")


class JavaParser:
    """JVM traces; with `Caused by:` chains the root cause is reported, with its elided frames restored."""

    language: Language = "java"

    def detect(self, text: str) -> bool:
        return any(_JAVA_FRAME.match(line) for line in text[:MAX_TRACE_CHARS].splitlines())

    def parse(self, text: str) -> ParsedTrace | None:
        blocks: list[tuple[str, str, list[Frame], int]] = []  # type, message, frames (innermost first), "more"
        for raw in text[:MAX_TRACE_CHARS].splitlines():
            line = raw.rstrip()
            if raw.startswith("\t\t") or line.lstrip().startswith("Suppressed:"):
                continue  # suppressed exceptions are indented one level deeper; they are not the cause
            frame = _JAVA_FRAME.match(line)
            if frame and blocks:
                blocks[-1][2].append(_java_frame(frame))
                continue
            more = _JAVA_MORE.match(line)
            if more and blocks:
                exc_type, message, frames, _ = blocks[-1]
                blocks[-1] = (exc_type, message, frames, int(more["n"]))
                continue
            exc = _JAVA_EXCEPTION.match(line.strip())
            if exc is None:
                continue
            if line.strip().startswith("Caused by:"):
                if blocks:
                    blocks.append((exc["type"], (exc["msg"] or "").strip(), [], 0))
            elif not blocks or not blocks[-1][2]:
                # A top-level exception line; one without frames before it was log noise, not a trace.
                blocks[-1:] = [(exc["type"], (exc["msg"] or "").strip(), [], 0)]
        blocks = [b for b in blocks if b[2]]
        if not blocks:
            return None
        # "... N more": the last N frames equal the enclosing trace's last N; restore them for a full stack.
        frames = list(blocks[-1][2])
        omitted = blocks[-1][3]
        for outer in reversed(blocks[:-1]):
            if omitted <= 0:
                break
            frames.extend(outer[2][-omitted:])
            omitted = outer[3]
        return ParsedTrace("java", blocks[-1][0], blocks[-1][1], tuple(reversed(frames)))


def _java_frame(match: re.Match[str]) -> Frame:
    cls, src = match["cls"], match["src"]
    package = cls.rsplit(".", 1)[0].replace(".", "/") if "." in cls else ""
    # Source files are named after the top-level class; the package gives the directories.
    if src.endswith((".java", ".kt", ".scala", ".groovy", ".clj")):
        file = f"{package}/{src}" if package else src
    else:  # "Native Method", "Unknown Source": no file to point at
        file = ""
    line = int(match["line"]) if match["line"] else None
    return Frame(file, line, f"{cls.rsplit('.', 1)[-1]}.{match['method']}", context=cls)


# ---------------------------------------------------------------- Go

_GO_PANIC = re.compile(r"^(?P<kind>panic|fatal error): (?P<msg>.*?)(?: \[recovered\])?\s*$")
_GO_GOROUTINE = re.compile(r"^goroutine \d+ \[[^\]]*\]:\s*$")
_GO_FUNC = re.compile(r"^(?:created by )?(?P<func>[^\s(][^\t]*?)(?:\([^()]*\))?(?: in goroutine \d+)?\s*$")
_GO_LOCATION = re.compile(r"^\s+(?P<file>\S.*?\.(?:go|s)):(?P<line>\d+)(?: \+0x[0-9a-f]+)?\s*$")


class GoParser:
    """Go panics: `panic: msg`, then the panicking goroutine's `func(args)` / `\\tfile.go:N +0x..` pairs."""

    language: Language = "go"

    def detect(self, text: str) -> bool:
        head = text[:MAX_TRACE_CHARS]
        return bool(re.search(r"^goroutine \d+ \[", head, re.MULTILINE)) and bool(
            re.search(r"^\s+\S+\.go:\d+", head, re.MULTILINE)
        )

    def parse(self, text: str) -> ParsedTrace | None:
        lines = text[:MAX_TRACE_CHARS].splitlines()
        exc_type, message = "panic", ""
        for line in lines:
            match = _GO_PANIC.match(line.strip())
            if match:
                exc_type, message = match["kind"], match["msg"]
                if exc_type == "panic" and message.startswith("runtime error: "):
                    exc_type, message = "runtime error", message.removeprefix("runtime error: ")
        start = next((i for i, line in enumerate(lines) if _GO_GOROUTINE.match(line)), None)
        if start is None:
            return None
        frames: list[Frame] = []
        func: str | None = None
        for line in lines[start + 1 :]:
            if not line.strip() or _GO_GOROUTINE.match(line):
                break  # only the first goroutine is the one that panicked
            location = _GO_LOCATION.match(line)
            if location and func is not None:
                frames.append(Frame(location["file"], int(location["line"]), func))
                func = None
                continue
            match = _GO_FUNC.match(line)
            func = match["func"] if match else None
        if not frames:
            return None
        return ParsedTrace("go", exc_type, message, tuple(reversed(frames)))


# ---------------------------------------------------------------- Ruby

# `path:line:in 'label'` (Ruby 3.4 quotes with '…', earlier versions with `…'); an uncaught exception prints the
# message and `(Type)` after the first frame, the rest follow as `\tfrom path:line:in …`.
_RB_FRAME = re.compile(
    r"^\s*(?:from\s+)?(?P<file>[^\s:`'][^:`']*?):(?P<line>\d+):in [`'](?P<label>[^`']*)'(?::\s*(?P<rest>.*))?$"
)
_RB_UNCAUGHT = re.compile(r"^(?P<msg>.*?)\s*\((?P<type>[A-Z]\w*(?:::[A-Z]\w*)*)\)\s*$", re.DOTALL)
# A logged exception before its backtrace: `Type (message):` (Rails) or `Type: message`.
_RB_HEADER = re.compile(r"^\s*(?P<type>[A-Z]\w*(?:::[A-Z]\w*)*)(?: \((?P<pmsg>.*)\):|:\s*(?P<msg>.*))\s*$")


class RubyParser:
    """Ruby backtraces, innermost first: uncaught (`file:12:in 'm': msg (Type)` + `from` lines) or logged."""

    language: Language = "ruby"

    def detect(self, text: str) -> bool:
        return any(_RB_FRAME.match(line) for line in text[:MAX_TRACE_CHARS].splitlines())

    def parse(self, text: str) -> ParsedTrace | None:
        lines = text[:MAX_TRACE_CHARS].splitlines()
        first = next((i for i, line in enumerate(lines) if _RB_FRAME.match(line)), None)
        if first is None:
            return None
        exc_type, message = "RuntimeError", ""  # what Ruby raises for a bare `raise "message"`
        head = _RB_FRAME.match(lines[first])
        uncaught = _RB_UNCAUGHT.match(head["rest"] or "") if head else None
        if uncaught:
            exc_type, message = uncaught["type"], uncaught["msg"].strip()
        else:
            for line in reversed(lines[:first]):
                header = _RB_HEADER.match(line)
                if header:
                    exc_type, message = header["type"], (header["pmsg"] or header["msg"] or "").strip()
                    break
        frames: list[Frame] = []
        for line in lines[first:]:
            match = _RB_FRAME.match(line)
            if match is None:
                if line.strip():
                    break
                continue
            frames.append(Frame(match["file"], int(match["line"]), match["label"]))
        return ParsedTrace("ruby", exc_type, message, tuple(reversed(frames)))


# ---------------------------------------------------------------- dispatch

PARSERS: tuple[TraceParser, ...] = (PythonParser(), JavaParser(), GoParser(), RubyParser(), JavaScriptParser())


def parse_trace(text: str) -> ParsedTrace | None:
    """Parse the first language whose parser recognizes `text`; None when nothing usable is found."""
    if not text or not text.strip():
        return None
    for parser in PARSERS:
        if parser.detect(text):
            parsed = parser.parse(text)
            if parsed is not None:
                return parsed
    return None


# ---------------------------------------------------------------- frames -> repository files

# Frames in these places are the runtime's or a dependency's, never the repository's own code.
_FOREIGN = re.compile(
    r"(?:^|/)(?:site-packages|dist-packages|node_modules|\.venv|venv|vendor|\.cargo|go/pkg/mod)/"
    r"|(?:^|/)lib/(?:python|pypy)\d(?:\.\d+)?/|(?:^|/)python\d+/lib/"
    r"|(?:^|/)(?:usr/local/go|usr/lib/go[^/]*|goroot)/src/"
    r"|^<[^>]*>$|^(?:node|internal|bun):|^internal/|^native$|^\[native code\]$",
    re.IGNORECASE,
)


def normalize_frame_path(path: str) -> str:
    """The path with URL schemes, Windows separators, drive letters and `./` removed."""
    text = path.strip()
    text = re.sub(r"^[A-Za-z][\w+.-]*://+", "/", text)  # file:///, webpack:///./, https://host/
    text = text.replace("\\", "/")
    text = re.sub(r"^[A-Za-z]:/", "/", text)
    text = re.sub(r"\?.*$", "", text)  # cache-busting query strings in bundled JS
    parts = [p for p in text.split("/") if p and p != "."]
    return "/".join(parts)


def is_foreign_path(path: str) -> bool:
    """True for standard-library, dependency and runtime-internal frames."""
    return bool(_FOREIGN.search(path.strip())) or bool(_FOREIGN.search(normalize_frame_path(path)))


def map_frames_to_repo(frames: Sequence[Frame], repo_files: Iterable[str]) -> list[tuple[Frame, str]]:
    """Pair frames with the repository file they run, by the longest matching path suffix.

    `/srv/app/shopcart/pricing.py` maps to `shopcart/pricing.py`; dependency and runtime frames are
    skipped; a frame whose best suffix fits several files equally well is ambiguous and skipped too.
    Call order is kept.
    """
    index: dict[str, list[str]] = {}
    for rel in repo_files:
        parts = rel.split("/")
        for k in range(1, len(parts) + 1):
            index.setdefault("/".join(parts[-k:]), []).append(rel)
    mapped: list[tuple[Frame, str]] = []
    for frame in frames:
        if not frame.file or is_foreign_path(frame.file):
            continue
        parts = normalize_frame_path(frame.file).split("/")
        for k in range(len(parts), 0, -1):
            suffix = "/".join(parts[-k:])
            candidates = index.get(suffix)
            if candidates:
                if len(candidates) == 1:
                    mapped.append((frame, candidates[0]))
                elif k == len(parts) and suffix in candidates:  # a relative path naming a file exactly
                    mapped.append((frame, suffix))
                break
    return mapped

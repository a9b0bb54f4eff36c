"""What makes two stack traces the same error, whichever source printed them (pure).

A log prints `httpx.ReadTimeout` where Sentry sends `ReadTimeout`; Java logs `java.lang.NullPointerException` and
Sentry `NullPointerException`; V8 prints `at Array.map (<anonymous>)` where Sentry renders `<anonymous>:0:0`; Ruby
3.4 labels a frame `Order#total` where older Rubies say `total`. The error's signature therefore uses the bare
exception class and, per language, a frame key without directories, line numbers or the printing's quirks.
"""

from __future__ import annotations

import re

from pagerpatch.traces.stacktrace import Frame, Language, ParsedTrace

_QUALIFIED = re.compile(r"[\w$]+(?:(?:\.|::)[\w$]+)+")
_JAVA_SYNTHETIC = re.compile(r"\$\d+")  # lambda$apply$0, Outer$1: numbered by the compiler, not by the code
_JS_ALIAS = re.compile(r"\s*\[as [^\]]*\]$")
_RUBY_BLOCK = re.compile(r"^(?:(?:block|rescue|ensure)(?: \(\d+ levels\))? in )+")
_ANONYMOUS = frozenset({"", "?", "<anonymous>", "anonymous", "<unknown>"})


def exception_class(exception_type: str) -> str:
    """The bare class of an exception type: `httpx.ReadTimeout` and `ReadTimeout` are both `ReadTimeout`."""
    name = exception_type.strip()
    if _QUALIFIED.fullmatch(name):
        return re.split(r"\.|::", name)[-1]
    return name


def _function(frame: Frame, language: Language) -> str:
    name = (frame.function or "").strip()
    if language == "javascript":
        name = _JS_ALIAS.sub("", name).removeprefix("async ")
    elif language == "java":
        name = _JAVA_SYNTHETIC.sub("", name)
    elif language == "ruby":
        name = re.split(r"#|\.", _RUBY_BLOCK.sub("", name))[-1]
    return "" if name in _ANONYMOUS else name


def frame_key(frame: Frame, language: Language) -> str:
    """One frame as `file-basename:function` (Java: `Class.method`, which names the file already)."""
    function = _function(frame, language)
    if language == "java":  # native frames print no file, and Sentry names them differently
        return function
    return f"{frame.file.replace(chr(92), '/').rsplit('/', 1)[-1]}:{function}"


def signature(parsed: ParsedTrace, frames: int = 3) -> tuple[str, tuple[str, ...]]:
    """The error's identity: its bare exception class and its innermost `frames` frame keys."""
    keys = tuple(frame_key(f, parsed.language) for f in parsed.frames[-frames:]) if frames > 0 else ()
    return exception_class(parsed.exception_type), keys

"""What a parsed stack trace is: frames in call order (innermost last) and the final exception."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Language = Literal["python", "javascript", "java", "go", "ruby"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame as printed: the file as the runtime saw it, line, function, and optional context."""

    file: str
    line: int | None
    function: str | None = None
    column: int | None = None
    context: str | None = None  # the source line (Python), the qualified class (Java), ...


@dataclass(frozen=True, slots=True)
class ParsedTrace:
    """The final exception of a trace and the frames that led to it, innermost last."""

    language: Language
    exception_type: str
    message: str
    frames: tuple[Frame, ...]

    @property
    def innermost(self) -> Frame | None:
        return self.frames[-1] if self.frames else None


class TraceParser(Protocol):
    """A parser for one language's stack traces."""

    language: Language

    def detect(self, text: str) -> bool:
        """Whether `text` looks like this language's trace (cheap; may be a false positive)."""
        ...

    def parse(self, text: str) -> ParsedTrace | None:
        """The parsed trace, or None when `text` holds no usable trace of this language."""
        ...

"""Secret masking: text is redacted before it reaches a model, a log line or a notification.

Built-in patterns cover the common credential shapes; policies.yaml (`redaction_patterns`) adds more through
`configure()`. A match keeps a short, harmless prefix (the kind of secret) so a reader still knows what was there.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MASK = "[REDACTED]"


@dataclass(frozen=True)
class Pattern:
    """A secret shape. When the regex has a group named `secret`, only that group is masked."""

    name: str
    regex: re.Pattern[str]


def _p(name: str, regex: str, flags: int = 0) -> Pattern:
    return Pattern(name, re.compile(regex, flags))


BUILTIN_PATTERNS: tuple[Pattern, ...] = (
    _p(
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
    ),
    _p("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{10,}"),
    _p("openai_key", r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}"),
    _p("aws_access_key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    _p(
        "aws_secret_key",
        r"(?i)\baws_?secret_?(?:access_?)?key\b[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+=]{40})",
    ),
    _p("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    _p("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    _p("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    _p("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    _p("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    _p("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    _p("bearer", r"(?i)\b(?:bearer|token)\s+(?P<secret>[A-Za-z0-9_\-.~+/]{16,}=*)"),
    _p("basic_auth_header", r"(?i)\bauthorization:\s*basic\s+(?P<secret>[A-Za-z0-9+/]{8,}=*)"),
    # scheme://user:password@host — only the password is masked.
    _p("url_credentials", r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]+:(?P<secret>[^\s@/]+)@"),
    _p(
        "assigned_secret",
        r"(?i)\b[\w.-]*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)"
        r"[\"']?\s*[:=]\s*[\"']?(?P<secret>[^\s\"',;&}]{4,})",
    ),
)


class Redactor:
    """Applies the built-in patterns plus configured ones."""

    def __init__(self, extra: Iterable[Pattern] = ()) -> None:
        self.patterns: tuple[Pattern, ...] = (*BUILTIN_PATTERNS, *extra)

    def redact(self, text: str) -> str:
        for pat in self.patterns:
            if pat.regex.search(text) is None:
                continue
            text = pat.regex.sub(_replacer(pat), text)
        return text


def _replacer(pat: Pattern) -> Any:
    def repl(m: re.Match[str]) -> str:
        if "secret" in pat.regex.groupindex and m.group("secret") is not None:
            start, end = m.span("secret")
            whole_start = m.start()
            return m.group(0)[: start - whole_start] + MASK + m.group(0)[end - whole_start :]
        return f"[REDACTED:{pat.name}]"

    return repl


_lock = threading.Lock()
_current = Redactor()


def configure(extra: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Install extra patterns (name -> regex) process-wide, on top of the built-in ones."""
    items = extra.items() if isinstance(extra, Mapping) else extra
    global _current
    with _lock:
        _current = Redactor(_p(name, regex) for name, regex in items)


def redact(text: str) -> str:
    """`text` with every secret the process knows about masked."""
    return _current.redact(text)


def redact_data(value: Any) -> Any:
    """Every string inside a JSON-like structure (dicts, lists, tuples) redacted; other values unchanged."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Redacts each record's final message (arguments merged) before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True

"""Runbook `alerts:` patterns and how they match an alert (pure).

An entry is one or more conditions joined by ` && `; all must hold. A runbook matches an alert when any entry does.
Conditions:

    *KeyError*checkout*        glob on the alert title (case-insensitive, whole title)
    title:*KeyError*           the same, explicitly (for a glob that contains `=`)
    re:KeyError .* checkout    regular expression searched in the title (case-insensitive)
    service=checkout           label glob (case-sensitive, whole value); `service` is the alert's service
    env=~prod(uction)?         label regular expression (whole value, as in Prometheus)
    env!=staging               the label is absent or does not match the glob
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pagerpatch.knowledge.model import KnowledgeEntry

AND = "&&"
_LABEL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!=|=)(.*)$")

Op = Literal["title_glob", "title_re", "label_glob", "label_re", "label_not"]


@dataclass(frozen=True)
class Condition:
    op: Op
    value: str
    label: str | None = None
    regex: re.Pattern[str] | None = None

    def holds(self, title: str, labels: Mapping[str, str]) -> bool:
        if self.op == "title_glob":
            return fnmatch.fnmatchcase(title.lower(), self.value.lower())
        if self.op == "title_re":
            return self.regex is not None and self.regex.search(title) is not None
        got = labels.get(self.label or "")
        if self.op == "label_not":
            return got is None or not fnmatch.fnmatchcase(got, self.value)
        if got is None:
            return False
        if self.op == "label_re":
            return self.regex is not None and self.regex.fullmatch(got) is not None
        return fnmatch.fnmatchcase(got, self.value)


def _regex(text: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {text!r}: {exc}") from None


def parse_condition(text: str) -> Condition:
    """One condition; ValueError naming what is wrong."""
    t = text.strip()
    if not t:
        raise ValueError("empty condition")
    if t.startswith("re:"):
        body = t[3:].strip()
        if not body:
            raise ValueError("empty regular expression after 're:'")
        return Condition("title_re", body, regex=_regex(body, re.IGNORECASE))
    if t.startswith("title:"):
        return Condition("title_glob", t[6:].strip())
    m = _LABEL.match(t)
    if m:
        label, op, value = m.group(1), m.group(2), m.group(3).strip()
        if op == "=~":
            return Condition("label_re", value, label, _regex(value))
        return Condition("label_not" if op == "!=" else "label_glob", value, label)
    return Condition("title_glob", t)


def parse_pattern(text: str) -> list[Condition]:
    """An `alerts:` entry as its conditions; ValueError naming the bad one."""
    return [parse_condition(part) for part in text.split(AND)]


def matching_pattern(patterns: Sequence[str], title: str, labels: Mapping[str, str]) -> str | None:
    """The first pattern that matches the alert (the most specific first), or None. Bad patterns never match."""
    parsed: list[tuple[str, list[Condition]]] = []
    for p in patterns:
        try:
            parsed.append((p, parse_pattern(p)))
        except ValueError:
            continue
    parsed.sort(key=lambda pc: -len(pc[1]))
    for text, conditions in parsed:
        if all(c.holds(title, labels) for c in conditions):
            return text
    return None


def specificity(patterns: Sequence[str], title: str, labels: Mapping[str, str]) -> int:
    """How many conditions the best matching pattern has (0: no match)."""
    hit = matching_pattern(patterns, title, labels)
    return len(parse_pattern(hit)) if hit is not None else 0


def matching_runbooks(entries: Sequence[KnowledgeEntry], title: str, labels: Mapping[str, str]) -> list[KnowledgeEntry]:
    """The runbooks among `entries` whose `alerts:` patterns match the alert, the most specific match first."""
    scored = [(specificity(e.alerts, title, labels), e) for e in entries if e.kind == "runbook"]
    return [e for s, e in sorted(scored, key=lambda se: (-se[0], se[1].keyword)) if s > 0]

"""What the knowledge base holds: guidelines, knowledge and runbooks, each one Markdown file with frontmatter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["guideline", "knowledge", "runbook"]
KINDS: tuple[Kind, ...] = ("guideline", "knowledge", "runbook")  # also the catalog's order
# A file's kind may come from the top-level folder it is in instead of its frontmatter.
FOLDER_KINDS: dict[str, Kind] = {"guidelines": "guideline", "knowledge": "knowledge", "runbooks": "runbook"}


@dataclass(frozen=True)
class KnowledgeEntry:
    kind: Kind
    keyword: str
    description: str
    tags: list[str]
    alerts: list[str]  # runbooks only: patterns matched against the alert (pagerpatch/knowledge/match.py)
    path: str  # relative to the knowledge folder, with forward slashes
    body: str  # the Markdown after the frontmatter


def catalog_order(entries: list[KnowledgeEntry]) -> list[KnowledgeEntry]:
    """Guidelines first, then knowledge, then runbooks; by keyword within a kind."""
    return sorted(entries, key=lambda e: (KINDS.index(e.kind), e.keyword))

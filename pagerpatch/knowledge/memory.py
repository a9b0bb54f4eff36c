"""`MemoryKnowledge`: the knowledge base's read side over a list of entries (unit tests, the eval harness)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pagerpatch.knowledge.match import matching_runbooks
from pagerpatch.knowledge.model import KnowledgeEntry, catalog_order

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class MemoryKnowledge:
    """Same methods as `KnowledgeBase`; search scores shared words (keyword and tags 3, description 2, body 1)."""

    def __init__(self, entries: Iterable[KnowledgeEntry]) -> None:
        self.entries = catalog_order(list(entries))

    async def catalog(self) -> list[KnowledgeEntry]:
        return list(self.entries)

    async def runbooks_for(self, title: str, labels: dict[str, str]) -> list[KnowledgeEntry]:
        return matching_runbooks(self.entries, title, labels)

    async def get(self, keyword: str) -> KnowledgeEntry | None:
        return next((e for e in self.entries if e.keyword == keyword), None)

    async def search(self, query: str, limit: int = 5) -> list[KnowledgeEntry]:
        wanted = _words(query)
        scored = []
        for e in self.entries:
            head = _words(" ".join([e.keyword, *e.tags]))
            score = 3 * len(wanted & head) + 2 * len(wanted & _words(e.description)) + len(wanted & _words(e.body))
            if score:
                scored.append((-score, e.keyword, e))
        return [e for _, _, e in sorted(scored, key=lambda t: (t[0], t[1]))][: max(limit, 0)]

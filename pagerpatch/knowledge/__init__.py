"""The knowledge base: guidelines, knowledge and runbooks as Markdown files with YAML frontmatter, indexed into
Postgres full-text search (docs/knowledge.md).

    result = await sync_knowledge(pool, settings)        # at start-up and by `pagerpatch knowledge sync`
    kb = KnowledgeBase(pool)
    await kb.catalog(); await kb.runbooks_for(title, labels); await kb.get(keyword); await kb.search("coupon")
"""

from __future__ import annotations

from pagerpatch.knowledge.memory import MemoryKnowledge
from pagerpatch.knowledge.model import KINDS, Kind, KnowledgeEntry
from pagerpatch.knowledge.parse import Loaded, load_folder
from pagerpatch.knowledge.store import KnowledgeBase, SyncResult, knowledge_dir, sync_knowledge

__all__ = [
    "KINDS",
    "Kind",
    "KnowledgeBase",
    "KnowledgeEntry",
    "Loaded",
    "MemoryKnowledge",
    "SyncResult",
    "knowledge_dir",
    "load_folder",
    "sync_knowledge",
]

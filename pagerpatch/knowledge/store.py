"""The knowledge base in Postgres: `sync_knowledge` indexes the folder, `KnowledgeBase` reads and searches it.

Sync rules: a file whose content hash is unchanged is not written again; a changed file is re-indexed; a removed
file's entry is deleted; a malformed file is reported and skipped, and the entry it had (if any) is kept as it was
indexed, so one bad edit never loses anything. Concurrent syncs (several replicas starting) take turns on an
advisory lock.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg

from pagerpatch.knowledge.match import matching_runbooks
from pagerpatch.knowledge.model import KINDS, KnowledgeEntry
from pagerpatch.knowledge.parse import load_folder
from pagerpatch.settings import Settings, config_path

log = logging.getLogger(__name__)

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
_SYNC_LOCK = 0x6B6E6F77  # any constant shared by all pagerpatch processes ("know")
TS_CONFIG = "english"
_COLUMNS = "kind, keyword, description, tags, alerts, path, body"
_ORDER = "array_position(ARRAY['guideline','knowledge','runbook'], kind), keyword"


def knowledge_dir(settings: Settings) -> Path:
    """`knowledge.dir`, else `knowledge/` beside the config file, else `./knowledge`."""
    return settings.knowledge.resolved_dir(config_path())


@dataclass
class SyncResult:
    folder: Path
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)  # `file:line: field: message`, one per skipped file
    missing: bool = False  # the folder does not exist: nothing was changed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        if self.missing:
            return f"knowledge: folder {self.folder} not found; the index was left as it was"
        return (
            f"knowledge: {len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged, {len(self.errors)} file(s) skipped ({self.folder})"
        )


@asynccontextmanager
async def _conn(db: Db) -> AsyncIterator[Any]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


def _words(text: str) -> str:
    """A keyword or tag as words for the index (`pricing-coupon_keyerror` -> `pricing coupon keyerror`)."""
    return text.replace("-", " ").replace("_", " ").replace(".", " ")


async def sync_knowledge(pool: Db, settings: Settings, folder: Path | None = None) -> SyncResult:
    """Index the knowledge folder into Postgres (only what changed). Never raises for a malformed file."""
    where = folder or knowledge_dir(settings)
    loaded = load_folder(where)
    result = SyncResult(where, errors=list(loaded.errors), missing=loaded.missing)
    for problem in loaded.errors:
        log.warning("knowledge file skipped: %s", problem)
    if loaded.missing:
        return result
    async with _conn(pool) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SYNC_LOCK)
        rows = await conn.fetch("SELECT keyword, path, content_hash FROM knowledge_entries")
        indexed = {r["keyword"]: (r["path"], r["content_hash"]) for r in rows}
        valid_paths = {f.entry.path for f in loaded.files}
        present = set(loaded.paths)
        keywords = {f.entry.keyword for f in loaded.files}
        for keyword, (path, _hash) in sorted(indexed.items()):
            gone = path not in present  # the file was deleted (or renamed)
            renamed = path in valid_paths and keyword not in keywords  # the file now defines another keyword
            if gone or renamed:
                await conn.execute("DELETE FROM knowledge_entries WHERE keyword = $1", keyword)
                result.removed.append(keyword)
        for f in loaded.files:
            e = f.entry
            before = indexed.get(e.keyword)
            if before == (e.path, f.content_hash):
                result.unchanged += 1
                continue
            await conn.execute(
                f"""INSERT INTO knowledge_entries ({_COLUMNS}, content_hash, search)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                        setweight(to_tsvector('{TS_CONFIG}', $9), 'A')
                        || setweight(to_tsvector('{TS_CONFIG}', $3), 'B')
                        || setweight(to_tsvector('{TS_CONFIG}', $7), 'C'))
                    ON CONFLICT (keyword) DO UPDATE SET kind = EXCLUDED.kind, description = EXCLUDED.description,
                        tags = EXCLUDED.tags, alerts = EXCLUDED.alerts, path = EXCLUDED.path, body = EXCLUDED.body,
                        content_hash = EXCLUDED.content_hash, search = EXCLUDED.search, synced_at = now()""",
                e.kind,
                e.keyword,
                e.description,
                e.tags,
                e.alerts,
                e.path,
                e.body,
                f.content_hash,
                " ".join([_words(e.keyword), *(_words(t) for t in e.tags)]),
            )
            (result.added if before is None else result.updated).append(e.keyword)
    if result.changed:
        log.info("%s", result.summary())
    return result


def _entry(row: Mapping[str, Any]) -> KnowledgeEntry:
    return KnowledgeEntry(
        kind=row["kind"],
        keyword=row["keyword"],
        description=row["description"],
        tags=list(row["tags"]),
        alerts=list(row["alerts"]),
        path=row["path"],
        body=row["body"],
    )


class KnowledgeBase:
    """The indexed knowledge base (read side). `KnowledgeBase(pool)`; a connection works too (CLI)."""

    def __init__(self, pool: Db) -> None:
        self.db = pool

    async def catalog(self) -> list[KnowledgeEntry]:
        """Every entry: guidelines first, then knowledge, then runbooks (by keyword within a kind)."""
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM knowledge_entries ORDER BY {_ORDER}")
        return [_entry(r) for r in rows]

    async def runbooks_for(self, title: str, labels: dict[str, str]) -> list[KnowledgeEntry]:
        """Runbooks whose `alerts:` patterns match the alert, the most specific match first."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM knowledge_entries WHERE kind = 'runbook' AND cardinality(alerts) > 0 "
            "ORDER BY keyword"
        )
        return matching_runbooks([_entry(r) for r in rows], title, labels)

    async def get(self, keyword: str) -> KnowledgeEntry | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM knowledge_entries WHERE keyword = $1", keyword)
        return _entry(row) if row is not None else None

    async def search(self, query: str, limit: int = 5) -> list[KnowledgeEntry]:
        """Full-text search (websearch_to_tsquery: words, "quoted phrases", -exclusions, or), best first. When
        every word together finds nothing, entries with any of the words are returned instead."""
        if not query.strip() or limit < 1:
            return []
        sql = f"""SELECT {_COLUMNS} FROM knowledge_entries, {{q}} AS q
                  WHERE search @@ q ORDER BY ts_rank_cd(search, q) DESC, keyword LIMIT $2"""
        every = f"websearch_to_tsquery('{TS_CONFIG}', $1)"
        rows = await self.db.fetch(sql.format(q=every), query, limit)
        if not rows:  # `a & b` -> `a | b`: any of the words
            anyword = f"to_tsquery('{TS_CONFIG}', replace({every}::text, ' & ', ' | '))"
            rows = await self.db.fetch(sql.format(q=anyword), query, limit)
        return [_entry(r) for r in rows]


__all__ = ["KINDS", "KnowledgeBase", "SyncResult", "knowledge_dir", "sync_knowledge"]

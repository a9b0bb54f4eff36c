"""Postgres access: one asyncpg pool and plain SQL migrations applied in order."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

# Any constant shared by all pagerpatch processes: serializes concurrent `db migrate` runs.
_MIGRATION_LOCK = 0x70A6E7C4


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in pagerpatch/migrations, sorted by file name (0001_..., 0002_...)."""
    folder = resources.files("pagerpatch").joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text()) for f in files]


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's reset query (one round trip per release).

    Safe because pool connections never carry session state: no SET, LISTEN, WITH HOLD cursors or session-level
    advisory locks (triage's group lock is transaction-scoped; migrations lock on their own connection). An open
    transaction is still rolled back on release by asyncpg itself.
    """


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, server_settings: dict[str, str] | None = None
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings=server_settings,
    )
    if pool is None:  # pragma: no cover - asyncpg only returns None when used without await
        raise RuntimeError("could not create the database pool")
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@contextlib.asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One short-lived connection (CLI commands, tools), closed on exit."""
    conn = await connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def migrate(dsn: str, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply the migrations not yet recorded in `schema_migrations`, each in its own transaction.

    Returns the versions applied by this call. Safe to run concurrently (advisory lock).
    """
    todo = list(migrations) if migrations is not None else bundled_migrations()
    conn = await connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version text PRIMARY KEY,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for m in todo:
                if m.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute("INSERT INTO schema_migrations(version) VALUES ($1)", m.version)
                log.info("applied migration %s", m.version)
                applied.append(m.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    finally:
        await conn.close()
    return applied


async def applied_migrations(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    return [r["version"] for r in rows]


async def audit(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    actor: str,
    action: str,
    incident_id: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one line to the append-only audit log."""
    await conn.execute(
        "INSERT INTO audit_log(actor, action, incident_id, details) VALUES ($1, $2, $3, $4)",
        actor,
        action,
        incident_id,
        details or {},
    )

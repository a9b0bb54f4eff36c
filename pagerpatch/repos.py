"""The repository registry: repositories from config, plus those registered at run time in Postgres.

Config wins on a name clash, so what an operator wrote is never silently overridden.
"""

from __future__ import annotations

import asyncpg

from pagerpatch.settings import RepoConfig, Settings


async def register(conn: asyncpg.Pool | asyncpg.Connection, repo: RepoConfig) -> None:
    await conn.execute(
        """INSERT INTO repos (name, config) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET config = EXCLUDED.config, updated_at = now()""",
        repo.name,
        repo.model_dump(mode="json"),
    )


async def registered(conn: asyncpg.Pool | asyncpg.Connection) -> list[RepoConfig]:
    rows = await conn.fetch("SELECT config FROM repos ORDER BY name")
    return [RepoConfig.model_validate(r["config"]) for r in rows]


async def get(settings: Settings, conn: asyncpg.Pool | asyncpg.Connection, name: str) -> RepoConfig | None:
    try:
        return settings.repo(name)
    except KeyError:
        pass
    row = await conn.fetchval("SELECT config FROM repos WHERE name = $1", name)
    return RepoConfig.model_validate(row) if row else None


async def for_service(settings: Settings, conn: asyncpg.Pool | asyncpg.Connection, service: str) -> RepoConfig | None:
    """The repository that serves `service`: its service-catalog entry, else the first whose `services` lists it."""
    entry = settings.service_catalog.get(service)
    if entry and entry.repo:
        return await get(settings, conn, entry.repo)
    return next((r for r in await all_repos(settings, conn) if service in r.services), None)


async def all_repos(settings: Settings, conn: asyncpg.Pool | asyncpg.Connection) -> list[RepoConfig]:
    names = {r.name for r in settings.repos}
    return [*settings.repos, *(r for r in await registered(conn) if r.name not in names)]

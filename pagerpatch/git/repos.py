"""The repository registry: repositories from config, plus those registered at run time in Postgres.

Config wins on a name clash, so what an operator wrote is never silently overridden.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from pagerpatch.git.workspace import git
from pagerpatch.kernel.errors import Poison
from pagerpatch.settings import RepoConfig, Settings

LS_REMOTE_TIMEOUT_S = 60.0


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


def branches(repo: RepoConfig) -> list[str]:
    """The repository's branch names, sorted: what a mirror clone of it will have (GitError when unreadable).

    Asked of the source itself (`git ls-remote`), so `repos add` can refuse a default branch that does not exist
    before any clone is made.
    """
    source = str(Path(repo.path).expanduser().resolve()) if repo.path else repo.location()
    out = git(Path(tempfile.gettempdir()), "ls-remote", "--heads", "--", source, timeout=LS_REMOTE_TIMEOUT_S)
    names = (line.split("\t", 1)[1] for line in out.splitlines() if "\t" in line)
    return sorted(name.removeprefix("refs/heads/") for name in names)


class RepoRegistry:
    """The registry bound to the settings and a pool: what a stage asks when an event names a repository."""

    def __init__(self, settings: Settings, conn: asyncpg.Pool | asyncpg.Connection) -> None:
        self.settings = settings
        self.conn = conn

    async def get(self, name: str) -> RepoConfig | None:
        return await get(self.settings, self.conn, name)

    async def require(self, name: str) -> RepoConfig:
        """The named repository; an event naming an unknown one is poison (it will not become known by retrying)."""
        found = await self.get(name)
        if found is None:
            raise Poison(f"repository {name!r} is not registered (config or `pagerpatch repos add`)")
        return found

    async def for_service(self, service: str) -> RepoConfig | None:
        return await for_service(self.settings, self.conn, service)


@dataclass
class MemoryRepos:
    """The registry as a dict, for the stages' unit tests and evals: an unknown name is Poison, as in `require`."""

    repos: dict[str, RepoConfig] = field(default_factory=dict)

    @classmethod
    def of(cls, *repos: RepoConfig) -> MemoryRepos:
        return cls({repo.name: repo for repo in repos})

    async def require(self, name: str) -> RepoConfig:
        found = self.repos.get(name)
        if found is None:
            raise Poison(f"repository {name!r} is not registered (config or `pagerpatch repos add`)")
        return found

"""The `pagerpatch` Typer app and what every command group shares: the consoles, settings, endpoints, a DB call.

Errors every command reports the same way live here: a bad configuration exits 2, a stack that is not running
(or a database that does not answer) exits 1, at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
import typer
from rich.console import Console

from pagerpatch.kernel import store
from pagerpatch.ops import endpoints
from pagerpatch.settings import ConfigError, Settings, load_settings

T = TypeVar("T")

app = typer.Typer(help="pagerpatch: production alerts into tested, reviewed pull requests.", no_args_is_help=True)

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

# A CLI command waits this long for Postgres: a stack that is up answers in milliseconds, and a person should not
# wait asyncpg's default minute to learn that nothing is running.
DB_CONNECT_TIMEOUT_S = 3.0


def current_settings() -> Settings:
    """The settings tree, or exit 2 naming what is wrong with it."""
    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def running_endpoints(settings: Settings) -> endpoints.Endpoints:
    """Where the running system's NATS, Postgres and ingest are, or exit 1 saying it is not running."""
    try:
        return endpoints.resolve(settings)
    except endpoints.NotRunning as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def not_running_message(settings: Settings) -> str:
    """What to tell a person when neither the settings nor a live `pagerpatch up` name a database."""
    return (
        f"no pagerpatch stack is running (no DATABASE_URL and no {settings.state_dir / endpoints.STATE_FILE}): "
        "start it with `pagerpatch up` (or `./dev run`), or set DATABASE_URL"
    )


def database_url(settings: Settings) -> str:
    """The database of the running system (settings first, then a live `pagerpatch up`), or exit 1 at once."""
    if settings.database_url:
        return settings.database_url
    live = endpoints.running(settings.state_dir)
    if live is None:
        err.print(f"[red]{not_running_message(settings)}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    return live.database_url


def where(url: str) -> str:
    """host:port/database of a database URL, without the user name or password (for messages)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the running system's database; exit 1 at once when it does not answer."""
    try:
        conn = await asyncio.wait_for(store.connect(url), timeout=DB_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        why = f"no answer within {DB_CONNECT_TIMEOUT_S:.0f}s" if isinstance(exc, TimeoutError) else str(exc)
        err.print(f"the pagerpatch database at {where(url)} is not reachable ({why}); is the stack running? "
                  "(`pagerpatch up`)", style="red", soft_wrap=True, markup=False)  # fmt: skip
        raise typer.Exit(1) from None
    try:
        yield conn
    finally:
        await conn.close()


def with_db(settings: Settings, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `fn` on one connection to the running system's database (exit 1 at once when there is none)."""
    url = database_url(settings)

    async def go() -> T:
        async with connected(url) as conn:
            return await fn(conn)

    return asyncio.run(go())

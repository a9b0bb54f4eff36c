"""Shared fixtures: one NATS and one Postgres per session, real servers either way.

`NATS_URL` / `DATABASE_URL` point the tests at servers you run; without them a private nats-server and
Postgres are started under the session's tmp dir (on free ports) and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from pagerpatch.kernel import store
from pagerpatch.ops.embedded import EmbeddedNats, EmbeddedPostgres
from pagerpatch.ops.embedded_proc import Lifecycle
from tests.support.fake_anthropic import fake_anthropic  # noqa: F401  (fixture: fake Messages API server)


def _session_server(variable: str, embedded: Callable[[], Lifecycle]) -> Iterator[str]:
    """The URL in `variable` when it is set (servers you run), else that of `embedded()`, started for the session."""
    external = os.environ.get(variable)
    if external:
        yield external
        return
    server = embedded()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a NATS server with JetStream: `NATS_URL`, or an embedded one for the session."""
    yield from _session_server("NATS_URL", lambda: EmbeddedNats(tmp_path_factory.mktemp("nats-state")))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a Postgres database: `DATABASE_URL`, or the `pagerpatch` db of an embedded server."""
    # Not under pytest's tmp root: a second pytest session resets that to 0700 and the server (which runs
    # as an unprivileged user when we are root) would lose access to its own data directory mid-run.
    state = Path(tempfile.mkdtemp(prefix="pagerpatch-test-pg-"))
    try:
        yield from _session_server("DATABASE_URL", lambda: EmbeddedPostgres(state))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def database_url_for(url: str, database: str) -> str:
    """`url` with its database replaced (user, host, port and query parameters kept)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture
async def fresh_db(database_url: str) -> AsyncIterator[str]:
    """URL of a new, empty database on the session's server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield database_url_for(database_url, name)
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            # FORCE: a connection the test leaked must not keep its database alive.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on a fresh, migrated database."""
    await store.migrate(fresh_db)
    p = await store.create_pool(fresh_db, max_size=4)
    try:
        yield p
    finally:
        await p.close()

"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from pagerpatch.ops.embedded import EmbeddedNats, EmbeddedPostgres
from tests.support.streams import delete_streams


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    """A JetStream context on a clean slate: the pagerpatch streams are deleted before each test."""
    nc = await nats.connect(nats_url)
    jsc = nc.jetstream()
    await delete_streams(jsc)
    yield jsc
    await nc.drain()


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A Postgres of this test alone (the test may stop and restart it)."""
    with EmbeddedPostgres(tmp_path / "pg") as server:  # started on entry, stopped on exit
        yield server


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server of this test alone (the test may stop and restart it)."""
    with EmbeddedNats(tmp_path / "nats") as server:  # started on entry, stopped on exit
        yield server

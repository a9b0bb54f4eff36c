"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from schemas import streams


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    """A JetStream context on a clean slate: the pagerpatch streams are deleted before each test."""
    nc = await nats.connect(nats_url)
    jsc = nc.jetstream()
    for s in streams.STREAMS:
        try:
            await jsc.delete_stream(s.name)
        except nats.js.errors.NotFoundError:
            pass
    yield jsc
    await nc.drain()

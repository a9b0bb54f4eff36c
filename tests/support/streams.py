"""A clean JetStream slate for integration tests."""

from __future__ import annotations

import nats
from nats.js import JetStreamContext

from schemas import streams


async def delete_streams(jsc: JetStreamContext) -> None:
    """Delete the pagerpatch streams (a test then sets up only the consumers it needs)."""
    for s in streams.STREAMS:
        try:
            await jsc.delete_stream(s.name)
        except nats.js.errors.NotFoundError:
            pass

"""A clean JetStream slate for integration tests, and waiting for what a service does to show."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

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


async def wait_for(cond: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll an async condition until it holds (returning its value), or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await cond()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")

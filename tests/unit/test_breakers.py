"""The circuit breaker around outbound calls: failures open it, an open breaker is Transient, it recovers."""

from __future__ import annotations

import asyncio

import pytest

from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Poison, Transient


async def fail() -> None:
    raise ConnectionError("connection refused")


async def ok() -> str:
    return "ok"


async def test_breaker_opens_after_threshold_and_recovers() -> None:
    b = Breakers(threshold=2, reset_after_s=0.2)
    for _ in range(2):
        with pytest.raises(Transient, match="call failed"):
            await b.call("github", fail)
    with pytest.raises(Transient, match="circuit open") as opened:
        await b.call("github", ok)  # not even attempted while open
    assert opened.value.retry_after_s == 0.2
    assert await b.call("slack", ok) == "ok"  # one breaker per dependency
    await asyncio.sleep(0.25)
    assert await b.call("github", ok) == "ok"
    assert await b.state("github") == "closed"


async def test_poison_passes_through_and_does_not_open_the_breaker() -> None:
    b = Breakers(threshold=1, reset_after_s=10)

    async def bad_input() -> None:
        raise Poison("no such repository")

    for _ in range(3):
        with pytest.raises(Poison):
            await b.call("git", bad_input)
    assert await b.call("git", ok) == "ok"


async def test_only_listed_failures_count() -> None:
    b = Breakers(threshold=1, reset_after_s=10)

    async def value_error() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await b.call("git", value_error, failures=(ConnectionError,))
    assert await b.call("git", ok) == "ok"

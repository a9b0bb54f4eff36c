"""Which errors are outages of the store or the bus, and waiting one out without giving up on the message."""

from __future__ import annotations

import asyncio

import asyncpg
import nats.errors
import pytest

from pagerpatch.kernel import outage


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("connection is closed"),
    ],
)
def test_store_outages(exc: Exception) -> None:
    assert outage.is_store_outage(exc)
    assert outage.is_store_outage(RuntimeError("wrapped")) is False
    try:
        raise RuntimeError("the adapter wrapped it") from exc
    except RuntimeError as wrapped:
        assert outage.is_store_outage(wrapped)


def test_a_handlers_missing_file_is_not_an_outage_but_the_runtimes_pool_timeout_is() -> None:
    assert not outage.is_store_outage(FileNotFoundError("repo.yaml"))
    assert not outage.is_store_outage(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not outage.is_store_outage(asyncpg.InterfaceError("the server expects 3 arguments, 2 were passed"))
    assert outage.is_store_outage(TimeoutError(), any_os_error=True)  # pool acquire timed out


def test_bus_outages() -> None:
    assert outage.is_bus_outage(nats.errors.TimeoutError())
    assert outage.is_bus_outage(nats.errors.ConnectionClosedError())
    assert outage.is_bus_outage(nats.errors.NoRespondersError())
    assert not outage.is_bus_outage(ValueError("bad subject"))


def test_backoff_grows_and_is_capped() -> None:
    waits = [outage.backoff(n, base_s=0.2, cap_s=5.0) for n in range(1, 10)]
    assert waits[:3] == [0.2, 0.4, 0.8]
    assert max(waits) == 5.0 and waits == sorted(waits)


async def test_through_retries_an_outage_until_the_store_answers() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionRefusedError(111, "refused")
        return "answered"

    got = await outage.through(flaky, what="t", outage=outage.is_store_outage, stopping=asyncio.Event(), cap_s=0.01)
    assert got == "answered" and calls == 4


async def test_through_raises_other_errors_at_once_and_stops_with_the_service() -> None:
    async def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await outage.through(broken, what="t", outage=outage.is_store_outage, stopping=asyncio.Event())

    stopping = asyncio.Event()

    async def down() -> None:
        stopping.set()
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(outage.Stopped):
        await outage.through(down, what="t", outage=outage.is_store_outage, stopping=stopping)


def test_max_deliveries_reason_says_what_the_checkpoint_knows() -> None:
    from pagerpatch.kernel.checkpoints import Checkpoint
    from pagerpatch.kernel.handoff import advisory_reason

    never = advisory_reason(5, None)
    assert never == ("gave up after 5 deliveries (max_deliver); no delivery reached its checkpoint "
                     "(store unreachable, or a crash before it)")  # fmt: skip
    failed = advisory_reason(5, Checkpoint(status="started", attempts=5, outputs=(), last_error="KeyError: 'x'"))
    assert failed.endswith("; last error: KeyError: 'x'")
    crashed = advisory_reason(3, Checkpoint(status="started", attempts=3, outputs=(), last_error=None))
    assert crashed.endswith("; the handler never finished (crash or ack timeout)")

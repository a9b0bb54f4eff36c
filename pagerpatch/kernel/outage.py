"""Outages of the store and the bus: which errors mean "the server is not answering", and waiting them out.

An outage is not a property of the message: a handoff that meets one waits in place (its heartbeat keeps the
delivery alive) and tries again, so an outage never uses up `max_deliver` and never dead-letters anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import nats.errors

log = logging.getLogger(__name__)

T = TypeVar("T")

# Postgres refusing work for a while (starting up, shutting down, restarting after a crash, out of slots).
_PG_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError, ...
    asyncpg.exceptions.OperatorInterventionError,  # AdminShutdown, CrashShutdown, CannotConnectNow
    asyncpg.exceptions.TooManyConnectionsError,
)
_NATS_UNAVAILABLE = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.UnexpectedEOF,
)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 8:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def is_store_outage(exc: BaseException, *, any_os_error: bool = False) -> bool:
    """True when `exc` (or what caused it) says Postgres is unreachable rather than that the work is wrong.

    `any_os_error` is for calls that only talk to Postgres (the runtime's own store calls): there every
    OSError/TimeoutError (refused, reset, pool acquire timeout) is the store. A handler's OSError may be a
    missing file, so only connection errors count there.
    """
    for e in _chain(exc):
        if isinstance(e, (*_PG_UNAVAILABLE, ConnectionError)):
            return True
        if any_os_error and isinstance(e, OSError):  # TimeoutError is an OSError
            return True
        if isinstance(e, asyncpg.InterfaceError) and ("closed" in str(e) or "connection" in str(e)):
            return True
    return False


def is_bus_outage(exc: BaseException) -> bool:
    """True when a publish failed because NATS is not answering (the publish may be retried as is)."""
    return any(isinstance(e, (*_NATS_UNAVAILABLE, ConnectionError, TimeoutError)) for e in _chain(exc))


class Stopped(Exception):
    """The service stops while waiting out an outage: leave the message for redelivery."""

    def __init__(self, delay: float) -> None:
        super().__init__("stopping during an outage")
        self.delay = delay


def backoff(attempt: int, base_s: float = 0.2, cap_s: float = 5.0) -> float:
    """Wait before the next try (attempt 1, 2, ...): exponential from `base_s`, capped at `cap_s` (the outage may be
    long). The one backoff of the kernel: a failed message's redelivery delay is this too."""
    return float(min(cap_s, base_s * (2.0 ** min(max(attempt - 1, 0), 64))))


async def through(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    outage: Callable[[BaseException], bool],
    stopping: asyncio.Event,
    cap_s: float = 5.0,
) -> T:
    """`call()`, tried again with capped backoff for as long as it fails with an outage, until `stopping`.

    Any other error propagates at once. Raises `Stopped` when the service stops mid-outage.
    """
    attempt = 0
    started = time.monotonic()
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not outage(exc):
                raise
            attempt += 1
            wait = backoff(attempt, cap_s=cap_s)
            if attempt == 1 or attempt % 10 == 0:
                log.warning("%s: outage (%s: %s); trying again in %.1fs", what, type(exc).__name__, exc, wait)
            if stopping.is_set():
                raise Stopped(wait) from exc
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=wait)
            if stopping.is_set():
                raise Stopped(wait) from exc
            continue
        if attempt:
            log.warning("%s: answered again after %d tries (%.1fs)", what, attempt + 1, time.monotonic() - started)
        return result

"""Circuit breakers around every outbound call (purgatory). An open breaker is a `Transient` error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from pagerpatch.kernel import metrics
from pagerpatch.kernel.errors import Poison, Transient

T = TypeVar("T")


class Breakers:
    """One breaker per dependency name (e.g. "github", "anthropic", "sandbox")."""

    def __init__(self, *, threshold: int = 5, reset_after_s: float = 30.0) -> None:
        self.reset_after_s = reset_after_s
        self._factory = AsyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=reset_after_s)

    async def call(
        self,
        dependency: str,
        fn: Callable[[], Awaitable[T]],
        *,
        failures: tuple[type[BaseException], ...] = (Exception,),
    ) -> T:
        """Run `fn` through the dependency's breaker.

        Exceptions of the `failures` kinds count against the breaker and surface as `Transient`; other
        exceptions (for example `Poison`) pass through untouched and do not open the breaker.
        """
        breaker = await self._factory.get_breaker(dependency, exclude=[(BaseException, _not_counted)])
        try:
            async with breaker:
                try:
                    return await fn()
                except (Poison, Transient):
                    raise
                except failures as exc:
                    raise _Counted(exc) from exc
        except OpenedState as exc:
            metrics.breaker_rejected(dependency)
            raise Transient(f"{dependency} unavailable (circuit open)", retry_after_s=self.reset_after_s) from exc
        except _Counted as exc:
            raise Transient(f"{dependency} call failed: {exc.cause!r}", retry_after_s=1.0) from exc.cause
        finally:
            metrics.breaker_state(dependency, str(breaker.context.state))

    async def state(self, dependency: str) -> str:
        breaker = await self._factory.get_breaker(dependency)
        return str(breaker.context.state)


def _not_counted(exc: BaseException) -> bool:
    return not isinstance(exc, _Counted)


class _Counted(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause

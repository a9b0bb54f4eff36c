"""The provider client (Anthropic API, Bedrock or Vertex) and one resilient `messages.create` call.

Retries are ours, not the SDK's (`max_retries=0` there), so every attempt is visible: logged, counted in the
ledger row and recorded as a span event. 429, 5xx and 529 (overloaded) and connection errors are retried with
exponential backoff, honouring `retry-after` / `retry-after-ms`; each attempt goes through the provider's
circuit breaker, and an open breaker (or retries used up) raises `LlmUnavailable`, a `Transient`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import anthropic
from anthropic.types import Message
from opentelemetry import trace

from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Transient
from pagerpatch.llm.config import llm_enabled
from pagerpatch.llm.errors import LlmError, LlmUnavailable
from pagerpatch.settings import LlmSettings, Settings

__all__ = ["AnyClient", "ProviderCaller", "llm_enabled", "make_client"]

log = logging.getLogger(__name__)

AnyClient = anthropic.AsyncAnthropic | anthropic.AsyncAnthropicBedrock | anthropic.AsyncAnthropicVertex

# Counted against the breaker and retried. Other API errors (400, 401, 403, 404, 413, …) are the caller's bug.
RETRYABLE: tuple[type[BaseException], ...] = (
    anthropic.RateLimitError,
    anthropic.InternalServerError,  # 500, 502, 503, 504, 529 overloaded
    anthropic.APIConnectionError,  # includes timeouts
)


def make_client(settings: Settings) -> AnyClient:
    """The SDK client for the configured provider; credentials come from the settings tree, not the environment."""
    llm = settings.llm
    timeout = anthropic.Timeout(llm.timeout_s, connect=llm.connect_timeout_s)
    common: dict[str, Any] = {"timeout": timeout, "max_retries": 0, "open_telemetry": False}
    if llm.base_url:
        common["base_url"] = llm.base_url
    if llm.provider == "bedrock":
        return anthropic.AsyncAnthropicBedrock(aws_region=llm.aws_region, aws_profile=llm.aws_profile, **common)
    if llm.provider == "vertex":
        vertex: dict[str, Any] = {}
        if llm.vertex_region:
            vertex["region"] = llm.vertex_region
        if llm.vertex_project_id:
            vertex["project_id"] = llm.vertex_project_id
        return anthropic.AsyncAnthropicVertex(**vertex, **common)
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    # An explicit key (even a placeholder for a key-injecting gateway at base_url) keeps the SDK off os.environ.
    return anthropic.AsyncAnthropic(api_key=key or "unset", **common)


def retry_after_s(exc: BaseException) -> float | None:
    """The server's requested wait (`retry-after-ms`, `retry-after` seconds or HTTP date), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def backoff_s(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter (attempt 1 is the first retry)."""
    return float(min(cap, base * 2 ** (attempt - 1)) * (0.75 + random.random() * 0.25))


@dataclass(frozen=True)
class Attempt:
    """One failed attempt, as observed (also a span event and a log line)."""

    number: int
    error: str
    status: int | None
    wait_s: float


@dataclass(frozen=True)
class CallResult:
    message: Message
    attempts: int


class ProviderCaller:
    """`messages.create` with retries and the provider's circuit breaker."""

    def __init__(
        self,
        client: AnyClient,
        provider: str,
        settings: LlmSettings,
        breakers: Breakers,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.settings = settings
        self.breakers = breakers
        self.breaker_name = f"llm:{provider}"
        self._sleep = sleep
        self._on_attempt = on_attempt

    async def create(self, request: dict[str, Any]) -> CallResult:
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            try:
                message = await self.breakers.call(self.breaker_name, lambda: self._create(request), failures=RETRYABLE)
                return CallResult(message, attempt)
            except Transient as exc:
                cause = exc.__cause__
                if not isinstance(cause, anthropic.APIError):  # the breaker is open: do not even try
                    raise LlmUnavailable(str(exc), retry_after_s=exc.retry_after_s) from exc
                status = getattr(cause, "status_code", None)
                asked = retry_after_s(cause)
                wait = asked if asked is not None else backoff_s(attempt, s.retry_base_s, s.retry_cap_s)
                if attempt > s.max_retries or wait > s.retry_cap_s:
                    raise LlmUnavailable(
                        f"{self.provider}: {type(cause).__name__} (status {status}) after {attempt} attempt(s)",
                        retry_after_s=max(wait, 1.0),
                    ) from cause
                self._observe(Attempt(attempt, type(cause).__name__, status, wait))
                await self._sleep(wait)
            except anthropic.APIStatusError as exc:
                raise LlmError(f"{self.provider}: {exc.status_code} {exc.message}") from exc
            except anthropic.APIError as exc:
                raise LlmError(f"{self.provider}: {exc}") from exc

    async def _create(self, request: dict[str, Any]) -> Message:
        message: Message = await self.client.messages.create(**request)
        return message

    def _observe(self, a: Attempt) -> None:
        log.warning(
            "%s: attempt %d failed (%s, status %s); retrying in %.2fs",
            self.provider,
            a.number,
            a.error,
            a.status,
            a.wait_s,
        )
        trace.get_current_span().add_event(
            "gen_ai.retry",
            {
                "attempt": a.number,
                "error.type": a.error,
                "http.response.status_code": a.status or 0,
                "wait_s": a.wait_s,
            },
        )
        if self._on_attempt is not None:
            self._on_attempt(a)

"""Ingest's round-trip coalescing and the local stack's opening of the generic endpoint (pure / in-process)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest
from pydantic import SecretStr

from pagerpatch.ops.webhooks import generic_signature_headers, local_open_providers
from pagerpatch.settings import IngestSettings, Settings
from services.ingest.adapters import Batcher


async def test_concurrent_calls_share_round_trips_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def run(keys: list[int]) -> dict[int, int]:
        batches.append(keys)
        await asyncio.sleep(0.01)  # a round trip
        return {k: k * 10 for k in keys}

    batcher: Batcher[int, int] = Batcher(run)
    results = await asyncio.gather(*(batcher.submit(i % 40) for i in range(100)))
    assert results == [(i % 40) * 10 for i in range(100)]
    assert len(batches) <= 3  # the first call alone, then everything that arrived meanwhile
    assert all(len(b) == len(set(b)) for b in batches)  # one key once per round trip
    assert await batcher.submit(7) == 70  # idle again: a lone call goes at once


async def test_a_failed_round_trip_fails_every_caller_in_it_and_not_the_next() -> None:
    calls = 0

    async def run(keys: list[str]) -> dict[str, str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise ConnectionResetError("database went away")
        return {k: k.upper() for k in keys}

    batcher: Batcher[str, str] = Batcher(run)
    first = await asyncio.gather(batcher.submit("a"), return_exceptions=True)
    assert isinstance(first[0], ConnectionResetError)
    assert await batcher.submit("b") == "B"


@pytest.mark.parametrize(
    ("host", "secret", "opened", "expected"),
    [
        ("127.0.0.1", None, [], ["generic"]),
        ("localhost", None, ["github"], ["github", "generic"]),
        ("0.0.0.0", None, [], []),  # reachable from other machines: never opened implicitly
        ("127.0.0.1", "s", [], []),  # a secret is configured: it is checked
        ("::1", None, ["generic"], ["generic"]),
    ],
)
def test_local_stack_opens_generic_only_on_loopback_without_a_secret(
    host: str, secret: str | None, opened: list[str], expected: list[str]
) -> None:
    settings = Settings(
        ingest_host=host,
        generic_webhook_secret=[SecretStr(secret)] if secret else [],
        ingest=IngestSettings(open_providers=opened),  # type: ignore[arg-type]
    )
    assert local_open_providers(settings) == expected


def test_cli_signs_generic_posts_with_the_first_secret() -> None:
    body = b'{"title": "x", "service": "y"}'
    assert generic_signature_headers(Settings(), body) == {}
    settings = Settings(generic_webhook_secret=[SecretStr("new"), SecretStr("old")])
    expected = "sha256=" + hmac.new(b"new", body, hashlib.sha256).hexdigest()
    assert generic_signature_headers(settings, body) == {"X-Pagerpatch-Signature": expected}

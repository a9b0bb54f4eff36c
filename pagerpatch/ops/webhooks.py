"""Client side of pagerpatch's own generic webhook: signing what the CLI posts, and the local stack's opening."""

from __future__ import annotations

import hashlib
import hmac

from pagerpatch.settings import Settings

LOOPBACK = ("127.", "localhost", "::1")


def generic_signature_headers(settings: Settings, body: bytes) -> dict[str, str]:
    """`{<ingest.generic_signature_header>: sha256=<hex>}` with the first generic secret; {} when none is set."""
    if not settings.generic_webhook_secret:
        return {}
    secret = settings.generic_webhook_secret[0].get_secret_value().encode()
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {settings.ingest.generic_signature_header: f"sha256={digest}"}


def local_open_providers(settings: Settings) -> list[str]:
    """What the embedded `pagerpatch up` opens: `generic` too when it has no secret and ingest listens on loopback.

    So `pagerpatch up` + `pagerpatch send`/`demo` work with no configuration, while an ingest reachable from other
    machines (or one with a generic secret) never accepts unsigned alerts unless the operator opened it.
    """
    opened: list[str] = list(settings.ingest.open_providers)
    if not settings.generic_webhook_secret and settings.ingest_host.startswith(LOOPBACK) and "generic" not in opened:
        opened.append("generic")
    return opened

"""Ingest's decisions at the edge, before any provider code runs: media type, body size, who is verified (pure)."""

from __future__ import annotations

from typing import Literal

from services.ingest.providers.base import Provider, Rejection
from services.ingest.settings import IngestConfig

Access = Literal["verify", "open"]


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def content_type_refusal(provider: Provider, ctype: str) -> Rejection | None:
    if ctype in provider.content_types:
        return None
    allowed = " or ".join(sorted(provider.content_types))
    return Rejection(415, f"content type must be {allowed}, got {ctype or 'none'!r}")


def declared_size_refusal(content_length: str | None, limit: int) -> Rejection | None:
    """Refuse a body announced as too large before reading any of it (a missing or odd header is read and counted)."""
    if content_length and content_length.isdigit() and int(content_length) > limit:
        return Rejection(413, f"body of {content_length} bytes exceeds the limit of {limit}")
    return None


def oversize(limit: int) -> Rejection:
    """The refusal of a body that turned out larger than the limit while it was being read."""
    return Rejection(413, f"body exceeds the limit of {limit} bytes")


def access(provider: Provider, config: IngestConfig) -> Access | Rejection:
    """Whether a request must be verified, may pass unverified (opened for local use), or is refused outright.

    A provider without a secret is refused unless `ingest.open_providers` names it; a configured secret is always
    checked, opened or not. SNS carries AWS's signature, always checked; its "secret" is the topic allowlist.
    """
    opened = provider.name in config.edge.open_providers
    if provider.name == "sns":
        return (
            "verify"
            if config.edge.sns_topic_arns or opened
            else Rejection(
                401,
                "no SNS topic allowlist configured: set ingest.sns_topic_arns "
                "(PAGERPATCH_INGEST__SNS_TOPIC_ARNS), or open sns for local use with ingest.open_providers",
            )
        )
    if config.secrets.get(provider.name):
        return "verify"
    if opened:
        return "open"
    return Rejection(
        401,
        f"no secret is configured for {provider.name}: set {provider.secret_env}, "
        f"or open {provider.name} for local use with ingest.open_providers (PAGERPATCH_INGEST__OPEN_PROVIDERS)",
    )


def exposure(config: IngestConfig) -> tuple[list[str], list[str]]:
    """(providers accepted without verification, providers refused for want of a secret), for the start-up log."""
    opened: list[str] = [p for p in config.edge.open_providers if not config.secrets.get(p)]
    missing = sorted(p for p, s in config.secrets.items() if not s and p not in opened and p != "sns")
    return opened, missing

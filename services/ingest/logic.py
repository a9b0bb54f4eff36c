"""Ingest's decisions at the edge, before any provider code runs (pure)."""

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

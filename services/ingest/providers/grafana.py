"""`POST /webhooks/grafana`: Grafana alerting's webhook contact point (Alertmanager-shaped payload)."""

from __future__ import annotations

import re

from services.ingest.providers import alertmanager, common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest

NAME = "grafana"


def _check_authorization(header: str, secrets: tuple[bytes, ...]) -> bool:
    creds = common.basic_auth(header)
    if creds is not None:
        user, password = creds
        return common.matches_any_secret(secrets, password) | common.matches_any_secret(secrets, f"{user}:{password}")
    _scheme, _, credentials = header.strip().partition(" ")  # Bearer (Grafana's default scheme) or any other
    return bool(credentials.strip()) and common.matches_any_secret(secrets, credentials.strip())


def _check_signature(req: WebhookRequest, ctx: Context, signature: str) -> Rejection | None:
    """Grafana 12+: hex HMAC-SHA256 of the body, or of `<timestamp>:<body>` when a timestamp header is sent."""
    s = ctx.settings
    digest = signature.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        return Rejection(401, f"malformed {s.grafana_signature_header} (expected 64 hex digits)")
    stamp = req.header(s.grafana_timestamp_header)
    message = req.body if stamp is None else stamp.strip().encode() + b":" + req.body
    if not common.any_hmac_matches(ctx.secrets, message, [digest]):
        return Rejection(401, f"{s.grafana_signature_header} does not match")
    if stamp is not None:
        sent_at = common.parse_int(stamp)
        if sent_at is None:
            return Rejection(401, f"malformed {s.grafana_timestamp_header}")
        return common.check_skew(sent_at, ctx, s.grafana_max_skew_s, s.grafana_timestamp_header)
    return None


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """The contact point's Authorization header and/or its HMAC signature: at least one, and every one sent valid."""
    auth = req.header("authorization")
    signature = req.header(ctx.settings.grafana_signature_header)
    if auth is None and signature is None:
        return Rejection(401, f"missing Authorization header or {ctx.settings.grafana_signature_header} signature")
    if auth is not None and not _check_authorization(auth, ctx.secrets):
        return Rejection(401, "Authorization credentials do not match")
    if signature is not None:
        return _check_signature(req, ctx, signature)
    return None


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    return alertmanager.normalize_grouped(NAME, req, ctx)


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_GRAFANA_WEBHOOK_SECRET",
)

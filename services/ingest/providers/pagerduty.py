"""`POST /webhooks/pagerduty`: v3 webhooks; incident triggered/reopened/priority -> alert, resolved -> resolution."""

from __future__ import annotations

import re

from services.ingest.providers import common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest
from services.ingest.providers.common import dig, text

NAME = "pagerduty"
FIRING = {"incident.triggered", "incident.reopened", "incident.priority_updated", "incident.escalated"}
RESOLVED = {"incident.resolved"}


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """`X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`: one signature per active secret; any one matching is enough."""
    value = req.header("x-pagerduty-signature")
    if not value:
        return Rejection(401, "missing X-PagerDuty-Signature")
    candidates = []
    for part in value.split(","):
        version, sep, digest = part.strip().partition("=")
        if version == "v1" and sep and re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            candidates.append(digest)
    if not candidates:
        return Rejection(401, "malformed X-PagerDuty-Signature (expected v1=<64 hex digits>)")
    if not common.any_hmac_matches(ctx.secrets, req.body, candidates):
        return Rejection(401, "X-PagerDuty-Signature does not match")
    return None


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    body = common.parse_json_object(req.body)
    if isinstance(body, Rejection):
        return body
    event = dig(body, "event")
    if not isinstance(event, dict):
        return Rejection(400, "not a v3 webhook: no `event` object")
    delivery = common.delivery_key(text(dig(event, "id"), 300)) or common.body_key(req.body)
    event_type = text(dig(event, "event_type"), 100) or ""
    if event_type not in FIRING | RESOLVED:
        return Delivery.ignored(delivery, f"{event_type or 'untyped event'} is not an alert for pagerpatch")
    data = dig(event, "data")
    incident_id = text(dig(data, "id"), 200)
    service = text(dig(data, "service", "summary"), 200)
    priority = text(dig(data, "priority", "summary"), 50)
    urgency = text(dig(data, "urgency"), 50)
    alert = common.alert_event(
        ctx,
        source=NAME,
        delivery_id=delivery,
        status="resolved" if event_type in RESOLVED else "firing",
        title=text(dig(data, "title"), 500),
        service=service,
        resource=text(dig(data, "html_url"), 500),
        description=f"PagerDuty {event_type} (incident #{dig(data, 'number')}, status {text(dig(data, 'status'))})",
        severity_hint=priority or urgency,
        labels={
            k: v
            for k, v in {
                "pagerduty_incident": incident_id or "",
                "pagerduty_service_id": text(dig(data, "service", "id")) or "",
                "urgency": urgency or "",
                "priority": priority or "",
                "event_type": event_type,
            }.items()
            if v
        },
        links_=common.links(dig(data, "html_url"), dig(data, "service", "html_url")),
        fingerprint_inputs={"incident": incident_id or "", "incident_key": text(dig(data, "incident_key")) or ""},
        kind=common.guess_kind(text(dig(data, "title"))),
        occurred_at=common.parse_time(dig(event, "occurred_at")),
        raw=body,
    )
    return Delivery(delivery_id=delivery, events=(alert,))


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_PAGERDUTY_WEBHOOK_SECRET",
)

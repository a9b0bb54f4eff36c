"""`POST /webhooks/linear`: issues labelled for the bot -> `task.requested` (signed, 60-second replay window)."""

from __future__ import annotations

import re
from typing import Any

from schemas.events import TaskRequested, TaskRequestedPayload
from services.ingest.providers import common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest
from services.ingest.providers.common import clip, dig, text

NAME = "linear"


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """`Linear-Signature`: hex HMAC-SHA256 of the raw body. The body's `webhookTimestamp` is checked in normalize."""
    sig = req.header("linear-signature")
    if not sig:
        return Rejection(401, "missing Linear-Signature")
    if not re.fullmatch(r"\s*[0-9a-fA-F]{64}\s*", sig):
        return Rejection(401, "malformed Linear-Signature (expected 64 hex digits)")
    if not common.any_hmac_matches(ctx.secrets, req.body, [sig]):
        return Rejection(401, "Linear-Signature does not match")
    return None


def _label_names(issue: Any) -> list[str]:
    labels = dig(issue, "labels")
    return [n for n in (text(dig(x, "name"), 200) for x in labels) if n] if isinstance(labels, list) else []


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    data = common.parse_json_object(req.body)
    if isinstance(data, Rejection):
        return data
    stamp = dig(data, "webhookTimestamp")
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        return Rejection(401, "missing webhookTimestamp: replay protection needs it")
    stale = common.check_skew(stamp / 1000, ctx, ctx.settings.linear_max_skew_s, "webhookTimestamp")
    if stale is not None:
        return stale
    hook = text(dig(data, "webhookId"), 200) or text(req.header("linear-delivery"), 200)
    delivery = common.delivery_key(f"{hook}:{int(stamp)}") if hook else common.body_key(req.body)
    assert delivery is not None
    kind, action = text(dig(data, "type"), 100), text(dig(data, "action"), 50)
    if kind != "Issue" or action not in ("create", "update"):
        return Delivery.ignored(delivery, f"{kind} {action} is not used by pagerpatch")
    issue = dig(data, "data")
    label = ctx.settings.bot_label
    if label.lower() not in (n.lower() for n in _label_names(issue)):
        return Delivery.ignored(delivery, f"issue is not labelled {label!r}")
    if action == "update":
        before = dig(data, "updatedFrom", "labelIds")
        label_ids = {text(dig(x, "id"), 200) for x in dig(issue, "labels") or [] if text(dig(x, "name"), 200) == label}
        if not isinstance(before, list) or label_ids & {text(x, 200) for x in before}:
            return Delivery.ignored(delivery, f"issue update did not add the {label!r} label")
    identifier = text(dig(issue, "identifier"), 50)
    title = text(dig(issue, "title"), 480) or "(untitled)"
    payload = TaskRequestedPayload(
        origin="linear",
        title=clip(f"{identifier}: {title}" if identifier else title, 500),
        body=clip(dig(issue, "description") if isinstance(dig(issue, "description"), str) else "", 20_000),
        requested_by=text(dig(data, "actor", "name"), 500) or text(dig(data, "actor", "id"), 500) or "",
        url=text(dig(issue, "url"), 2000) or text(dig(data, "url"), 2000) or "",
        delivery_id=delivery[:300],
    )
    task = TaskRequested.create(payload, source="ingest", team=ctx.team, event_id=common.event_id_for(NAME, delivery))
    return Delivery(delivery_id=delivery, events=(task,))


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_LINEAR_WEBHOOK_SECRET",
)

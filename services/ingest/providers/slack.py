"""`POST /webhooks/slack`: v0-signed Events API (URL check, app_mention -> task) and approval buttons."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal
from urllib.parse import parse_qs

import orjson

from schemas.events import ApprovalDecided, ApprovalDecidedPayload, TaskRequested, TaskRequestedPayload
from services.ingest.providers import common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest
from services.ingest.providers.common import clip, dig, text

NAME = "slack"
APPROVE_ACTIONS = {
    "pagerpatch.approve": "approve",
    "pagerpatch.reject": "reject",
    "approve": "approve",
    "reject": "reject",
}


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """Slack's v0 scheme: HMAC-SHA256 of `v0:<timestamp>:<raw body>`, and a 5-minute replay window."""
    stamp, sig = req.header("x-slack-request-timestamp"), req.header("x-slack-signature")
    if not stamp or not sig:
        return Rejection(401, "missing X-Slack-Request-Timestamp or X-Slack-Signature")
    sent_at = common.parse_int(stamp)
    if sent_at is None:
        return Rejection(401, "malformed X-Slack-Request-Timestamp")
    version, _, digest = sig.strip().partition("=")
    if version != "v0" or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        return Rejection(401, "malformed X-Slack-Signature (expected v0=<64 hex digits>)")
    base = b"v0:" + stamp.strip().encode() + b":" + req.body
    if not common.any_hmac_matches(ctx.secrets, base, [digest]):
        return Rejection(401, "X-Slack-Signature does not match")
    return common.check_skew(sent_at, ctx, ctx.settings.slack_max_skew_s, "X-Slack-Request-Timestamp")


def _mention_text(raw: Any) -> str:
    """The message without the leading `<@U…>` mentions."""
    return re.sub(r"<@[A-Z0-9]+(\|[^>]*)?>", "", raw if isinstance(raw, str) else "").strip()


def _event_callback(data: dict[str, Any], ctx: Context) -> Delivery:
    delivery = common.delivery_key(text(dig(data, "event_id"), 300)) or common.body_key(orjson.dumps(data))
    event = dig(data, "event")
    if dig(event, "type") != "app_mention":
        return Delivery.ignored(delivery, f"event {text(dig(event, 'type'), 100)!r} is not used by pagerpatch")
    if dig(event, "bot_id") is not None:
        return Delivery.ignored(delivery, "mention by a bot")
    body = _mention_text(dig(event, "text"))
    first_line = body.splitlines()[0] if body else ""
    payload = TaskRequestedPayload(
        origin="slack",
        title=clip(first_line, 500) or "(empty mention)",
        body=clip(body, 20_000),
        requested_by=text(dig(event, "user"), 500) or "",
        delivery_id=delivery[:300],
    )
    task = TaskRequested.create(payload, source="ingest", team=ctx.team, event_id=common.event_id_for(NAME, delivery))
    return Delivery(delivery_id=delivery, events=(task,))


def _incident_id(value: Any) -> uuid.UUID | None:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = dig(orjson.loads(value), "incident_id")
        except orjson.JSONDecodeError:
            return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _block_actions(data: dict[str, Any], ctx: Context, raw: bytes) -> Delivery | Rejection:
    actions = dig(data, "actions")
    ours = (
        [
            a
            for a in actions
            if isinstance(a, dict) and isinstance(dig(a, "action_id"), str) and a["action_id"] in APPROVE_ACTIONS
        ]
        if isinstance(actions, list)
        else []
    )
    trigger = text(dig(data, "trigger_id"), 200)
    delivery = common.delivery_key(trigger) or common.body_key(raw)
    if not ours:
        return Delivery.ignored(delivery, "no pagerpatch approval button in this interaction")
    action = ours[0]
    incident = _incident_id(dig(action, "value"))
    if incident is None:
        return Rejection(400, "approval button value is not an incident id")
    decision: Literal["approve", "reject"] = (
        "approve" if APPROVE_ACTIONS[action["action_id"]] == "approve" else "reject"
    )
    user = dig(data, "user")
    by = text(dig(user, "username"), 200) or text(dig(user, "name"), 200) or text(dig(user, "id"), 200) or "slack"
    payload = ApprovalDecidedPayload(
        decision=decision,
        decided_by=by,
        reason="decided in Slack",
        channel="slack",
        decided_by_id=text(dig(user, "id"), 200) or None,
    )
    event = ApprovalDecided.create(
        payload, source="ingest", team=ctx.team, incident_id=incident, event_id=common.event_id_for(NAME, delivery)
    )
    return Delivery(delivery_id=delivery, events=(event,))


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    if req.content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(req.body.decode())
        except UnicodeDecodeError:
            return Rejection(400, "form body is not UTF-8")
        if "payload" not in form:
            what = "slash command" if "command" in form else "form post"
            return Delivery.ignored(common.body_key(req.body), f"{what} is not used by pagerpatch")
        data = common.parse_json_object(form["payload"][0].encode())
        if isinstance(data, Rejection):
            return Rejection(400, f"interactivity payload: {data.reason}")
        if dig(data, "type") == "block_actions":
            return _block_actions(data, ctx, req.body)
        return Delivery.ignored(common.body_key(req.body), f"interaction {text(dig(data, 'type'), 100)!r} is not used")
    data = common.parse_json_object(req.body)
    if isinstance(data, Rejection):
        return data
    kind = dig(data, "type")
    if kind == "url_verification":
        challenge = text(dig(data, "challenge"), 500)
        if challenge is None:
            return Rejection(400, "url_verification without a challenge")
        return Delivery(delivery_id=None, reply={"challenge": challenge})
    if kind == "event_callback":
        return _event_callback(data, ctx)
    return Delivery.ignored(common.body_key(req.body), f"Slack payload type {text(kind, 100)!r} is not used")


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json", "application/x-www-form-urlencoded"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_SLACK_SIGNING_SECRET",
    accepted_status=200,
)

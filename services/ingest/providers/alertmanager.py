"""`POST /webhooks/alertmanager` (and Grafana's payload, which has the same shape): one alert per entry."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from schemas.events import AlertReceived
from services.ingest.providers import common, resources
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest
from services.ingest.providers.common import dig, text

NAME = "alertmanager"
MAX_ALERTS = 200


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """`Authorization: Bearer <token>`, or basic auth whose password (or `user:password`) is a configured token."""
    header = req.header("authorization")
    if not header:
        return Rejection(401, "missing Authorization header (bearer token or basic auth)")
    token = common.bearer(header)
    if token is not None:
        ok = common.matches_any_secret(ctx.secrets, token)
    else:
        creds = common.basic_auth(header)
        if creds is None:
            return Rejection(401, "malformed Authorization header (expected Bearer or Basic)")
        user, password = creds
        ok = common.matches_any_secret(ctx.secrets, password) | common.matches_any_secret(
            ctx.secrets, f"{user}:{password}"
        )
    return None if ok else Rejection(401, "credentials do not match")


def group_delivery_id(source: str, data: dict[str, Any], alerts: list[dict[str, Any]]) -> str:
    """Alertmanager sends no delivery id: group key + status + the alerts' fingerprints and states identify one."""
    parts = [text(dig(data, "groupKey"), 2000) or "", text(dig(data, "status"), 50) or ""]
    parts += sorted(
        f"{text(dig(a, 'fingerprint'), 200) or _label_hash(a)}:{text(dig(a, 'status'), 20)}" for a in alerts
    )
    return f"{source}-group:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _label_hash(alert: dict[str, Any]) -> str:
    labels = common.string_map(dig(alert, "labels"), limit=500)
    return hashlib.sha256("\x1f".join(f"{k}={v}" for k, v in sorted(labels.items())).encode()).hexdigest()[:16]


def _observed_at(entry: dict[str, Any]) -> datetime | None:
    """When the entry's state began: `startsAt` while firing (a repeat keeps it), `endsAt` once resolved."""
    if dig(entry, "status") == "resolved":
        ended = common.parse_time(dig(entry, "endsAt"))
        if ended is not None:
            return ended
    return common.parse_time(dig(entry, "startsAt"))


def alerts_of(
    source: str, data: dict[str, Any], raw_alerts: list[dict[str, Any]], ctx: Context, delivery: str
) -> tuple[AlertReceived, ...]:
    """One `alert.received` per entry in `alerts` (resolved entries as resolutions)."""
    common_labels = common.string_map(dig(data, "commonLabels"))
    out = []
    for entry in raw_alerts:
        labels = common.string_map(dig(entry, "labels"))
        annotations = common.string_map(dig(entry, "annotations"))
        name = labels.get("alertname") or common_labels.get("alertname")
        service = next((labels[k] for k in ctx.settings.service_labels if labels.get(k)), None)
        fp = text(dig(entry, "fingerprint"), 200) or _label_hash(entry)
        inputs = {"alertname": name or "", **{k: v for k, v in labels.items() if k != "alertname"}}
        details = (annotations.get("description"), annotations.get("message"), text(dig(entry, "valueString"), 2000))
        description = "\n".join(v for v in details if v)
        out.append(
            common.alert_event(
                ctx,
                source=source,
                delivery_id=delivery,
                part=f"{fp}:{text(dig(entry, 'status'), 20)}",
                status="resolved" if dig(entry, "status") == "resolved" else "firing",
                title=annotations.get("summary") or annotations.get("title") or name,
                service=service or name,
                resource=resources.resource_of(labels),
                description=description,
                severity_hint=labels.get("severity") or labels.get("priority"),
                labels=labels,
                links_=common.links(
                    dig(entry, "generatorURL"),
                    dig(entry, "dashboardURL"),
                    dig(entry, "panelURL"),
                    annotations.get("runbook_url"),
                    dig(data, "externalURL"),
                ),
                fingerprint_inputs=inputs,
                kind=common.guess_kind(name, annotations.get("summary")),
                # Grafana's stand-in when a rule's query returns no data: triage's policy decides (triage.md).
                noise_hint="datasource_nodata" if name == "DatasourceNoData" else None,
                occurred_at=_observed_at(entry),
                raw=entry,
            )
        )
    return tuple(out)


def normalize_grouped(source: str, req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    data = common.parse_json_object(req.body)
    if isinstance(data, Rejection):
        return data
    alerts = dig(data, "alerts")
    if not isinstance(alerts, list):
        return Rejection(400, "no `alerts` list in the body")
    entries = [a for a in alerts[:MAX_ALERTS] if isinstance(a, dict)]
    delivery = group_delivery_id(source, data, entries)
    events = alerts_of(source, data, entries, ctx, delivery)
    if not events:
        return Delivery.ignored(delivery, "no alerts in this notification")
    return Delivery(delivery_id=delivery, events=events)


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    return normalize_grouped(NAME, req, ctx)


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_ALERTMANAGER_TOKEN",
)

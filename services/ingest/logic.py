"""The project's own alert format (`POST /webhooks/generic`) and its normalization (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import AlertReceivedPayload

RAW_LIMIT = 16_384
DELIVERY_NAMESPACE = uuid.UUID("5f1d1c4e-8a59-4b53-9a3e-2b7c6a0e9d10")


class GenericAlert(BaseModel):
    """pagerpatch's generic alert. Unknown fields are ignored (senders add fields); known ones are checked."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    title: Annotated[str, Field(min_length=1, max_length=500)]
    service: Annotated[str, Field(min_length=1, max_length=200)]
    severity: Annotated[str, Field(max_length=50)] | None = None
    description: Annotated[str, Field(max_length=20_000)] = ""
    stack_trace: Annotated[str, Field(max_length=20_000)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    commit: Annotated[str, Field(max_length=100)] | None = None
    version: Annotated[str, Field(max_length=100)] | None = None
    fingerprint: Annotated[str, Field(max_length=200)] | None = None
    status: str = Field(default="firing", pattern="^(firing|resolved)$")
    resource: Annotated[str, Field(max_length=500)] | None = None
    links: list[str] = Field(default_factory=list, max_length=20)
    occurred_at: AwareDatetime | None = None


def clip_raw(body: Any) -> str:
    text = json.dumps(body, separators=(",", ":"), default=str)
    return text if len(text) <= RAW_LIMIT else text[: RAW_LIMIT - 20] + "…[truncated]"


def normalize(alert: GenericAlert, body: Any, delivery_id: str | None, received_at: datetime) -> AlertReceivedPayload:
    return AlertReceivedPayload(
        source="generic",
        status="resolved" if alert.status == "resolved" else "firing",
        service=alert.service,
        resource=alert.resource,
        title=alert.title,
        description=alert.description,
        severity_hint=alert.severity,
        labels={k[:200]: v[:1000] for k, v in list(alert.labels.items())[:50]},
        stack_trace=alert.stack_trace,
        links=[link[:2000] for link in alert.links],
        commit=alert.commit,
        version=alert.version,
        fingerprint=alert.fingerprint,
        occurred_at=alert.occurred_at or received_at,
        delivery_id=delivery_id,
        raw=clip_raw(body),
    )


def event_id_for(source: str, delivery_id: str | None) -> uuid.UUID:
    """A retried delivery maps to the same event id (and so the same Nats-Msg-Id)."""
    if delivery_id:
        return uuid.uuid5(DELIVERY_NAMESPACE, f"{source}:{delivery_id}")
    return uuid.uuid4()

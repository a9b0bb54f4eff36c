"""`POST /webhooks/generic`: pagerpatch's own alert format, or any JSON through a configured field mapping."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pagerpatch.kernel.redaction import redact
from schemas.events import AlertReceived, AlertReceivedPayload, FrameVars
from services.ingest.providers import common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest

NAME = "generic"
DELIVERY_HEADERS = ("x-pagerpatch-delivery", "idempotency-key")


# Limits on captured frame variables: the schema's counts, and sizes that keep an alert a message, not a core dump.
MAX_FRAMES = 50  # frames with variables per alert (AlertReceivedPayload.frame_vars)
MAX_VARS = 50  # variables per frame (FrameVars.vars)
MAX_NAME = 200  # characters of a variable's name
MAX_VALUE_CHARS = 2_000  # one variable's JSON: a bigger one is no argument to replay, and is dropped
MAX_TOTAL_CHARS = 32_000  # all variables' JSON together; the innermost frames are kept first
_DUNDER = re.compile(r"^__\w+__$")


class GenericFrame(BaseModel):
    """One frame's captured local variables in the generic format (extra keys such as `module` are ignored)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    file: Annotated[str, Field(min_length=1, max_length=1000)]
    function: Annotated[str, Field(min_length=1, max_length=500)]
    line: Annotated[int, Field(ge=1)] | None = None
    vars: dict[str, Any] = Field(default_factory=dict)


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
    links: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list, max_length=20)
    occurred_at: AwareDatetime | None = None
    # Local variables per stack frame, innermost last: lets a fix be proved by calling the failing function again.
    frame_vars: list[GenericFrame] = Field(default_factory=list)


# ---------------------------------------------------------------- verification


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """HMAC-SHA256 of the raw body, hex (optionally `sha256=`-prefixed), in the configured header."""
    header = ctx.settings.generic_signature_header
    value = req.header(header)
    if not value:
        return Rejection(401, f"missing {header} signature")
    sig = value.strip()
    sig = sig.removeprefix("sha256=")
    if not common.any_hmac_matches(ctx.secrets, req.body, [sig]):
        return Rejection(401, f"{header} signature does not match")
    return None


# ---------------------------------------------------------------- field mapping

_FIRING = {"firing", "alerting", "alarm", "triggered", "trigger", "open", "problem", "critical", "active"}
_RESOLVED = {"resolved", "ok", "closed", "recovered", "resolve", "normal", "inactive"}


def resolve(data: Any, path: str) -> Any:
    """The value at a JSON pointer (`/a/b/0`, RFC 6901) or dotted path (`a.b.0`); None when absent."""
    if path.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    else:
        parts = path.split(".")
    for part in parts:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def apply_mapping(body: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """A foreign JSON body as a generic alert: only the mapped fields are read (the body's own keys mean nothing)."""
    out: dict[str, Any] = {}
    for field, path in mapping.items():
        value = resolve(body, path)
        if value is None:
            continue
        if field == "status":
            word = str(value).strip().lower()
            value = "resolved" if word in _RESOLVED else "firing" if word in _FIRING else word
        elif field == "labels":
            value = common.string_map(value)
        elif field == "links":
            value = common.links(*(value if isinstance(value, list) else [value]))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and field != "occurred_at":
            value = str(value)
        out[field] = value
    return out


# ---------------------------------------------------------------- captured frame variables


@dataclass(frozen=True)
class CapturedFrame:
    """One frame's variables as a source sent them, already reduced to JSON values (Sentry's reprs undone)."""

    file: str
    function: str
    line: int | None
    vars: Mapping[str, Any]


def is_plain(value: Any) -> bool:
    """Whether a value is plain JSON: null, booleans, finite numbers, strings, and lists/objects of them."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_plain(item) for key, item in value.items())
    return False


def _kept(name: str, value: Any) -> str | None:
    """The variable's JSON when it may travel with the alert; None when it is dropped.

    Dropped: interpreter names (`__file__`, `__builtins__`: module globals, never a call's arguments), names too
    long, values that are not plain JSON or too big to replay, and anything that looks like a credential (the
    variables are stored with the incident and may become a committed regression test).
    """
    if not name or len(name) > MAX_NAME or _DUNDER.match(name) or not is_plain(value):
        return None
    dumped = json.dumps({name: value}, ensure_ascii=False, sort_keys=True)
    if len(dumped) > MAX_VALUE_CHARS or redact(dumped) != dumped:
        return None
    return dumped


def bounded_frame_vars(frames: Iterable[CapturedFrame]) -> list[FrameVars]:
    """Captured frames as `frame_vars` (innermost last), within the limits above: frames left without any variable
    are skipped, and when the budget runs out the outermost frames go first (the failing call is the innermost)."""
    kept: list[FrameVars] = []
    budget = MAX_TOTAL_CHARS
    for frame in reversed(list(frames)):
        if len(kept) >= MAX_FRAMES:
            break
        if not 0 < len(frame.file) <= 1000 or not 0 < len(frame.function) <= 500:  # a clipped name matches nothing
            continue
        variables: dict[str, Any] = {}
        for name, value in frame.vars.items():
            dumped = _kept(name, value)
            if dumped is None or len(dumped) > budget:
                continue
            variables[name] = value
            budget -= len(dumped)
            if len(variables) >= MAX_VARS:
                break
        if variables:
            line = frame.line if frame.line is not None and frame.line >= 1 else None
            kept.append(FrameVars(file=frame.file, function=frame.function, line=line, vars=variables))
    return kept[::-1]


# ---------------------------------------------------------------- normalization


def to_payload(alert: GenericAlert, body: Any, delivery_id: str | None, received_at: datetime) -> AlertReceivedPayload:
    return AlertReceivedPayload(
        source=NAME,
        status="resolved" if alert.status == "resolved" else "firing",
        service=alert.service,
        resource=alert.resource,
        title=alert.title,
        description=alert.description,
        severity_hint=alert.severity,
        labels=common.string_map(alert.labels),
        stack_trace=alert.stack_trace,
        links=alert.links,
        commit=alert.commit,
        version=alert.version,
        fingerprint=alert.fingerprint,
        fingerprint_inputs={"title": alert.title},
        kind=common.guess_kind(alert.title) if alert.stack_trace is None else "error",
        occurred_at=alert.occurred_at or received_at,
        delivery_id=delivery_id,
        raw=common.clip_raw(body),
        frame_vars=bounded_frame_vars(CapturedFrame(f.file, f.function, f.line, f.vars) for f in alert.frame_vars),
    )


def delivery_id_of(req: WebhookRequest) -> str | Rejection | None:
    for name in DELIVERY_HEADERS:
        value = req.header(name)
        if value is not None:
            if not 0 < len(value) <= 300:
                return Rejection(400, "delivery id must be 1 to 300 characters")
            return value
    return None


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    data = common.parse_json_object(req.body)
    if isinstance(data, Rejection):
        return data
    mapping: dict[str, str] = {str(k): v for k, v in ctx.settings.generic_mapping.items()}
    fields = apply_mapping(data, mapping) if mapping else data
    try:
        alert = GenericAlert.model_validate(fields)
    except ValidationError as exc:
        reasons = []
        for e in exc.errors()[:10]:
            where = ".".join(str(p) for p in e["loc"]) or "body"
            src = mapping.get(str(e["loc"][0])) if e["loc"] else None
            reasons.append(f"{where}: {e['msg']}" + (f" (mapped from {src})" if src else ""))
        return Rejection(400, f"invalid alert: {'; '.join(reasons)}")
    delivery = delivery_id_of(req)
    if isinstance(delivery, Rejection):
        return delivery
    payload = to_payload(alert, data, delivery, ctx.now)
    event = AlertReceived.create(payload, source="ingest", team=ctx.team, event_id=common.event_id_for(NAME, delivery))
    return Delivery(delivery_id=delivery, events=(event,))


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_GENERIC_WEBHOOK_SECRET",
)

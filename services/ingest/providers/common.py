"""Helpers shared by the provider modules: constant-time HMAC checks, tolerant reading, clipped payloads (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.events import AlertReceived, AlertReceivedPayload
from services.ingest.providers.base import Context, Rejection

RAW_LIMIT = 16_384
DELIVERY_NAMESPACE = uuid.UUID("5f1d1c4e-8a59-4b53-9a3e-2b7c6a0e9d10")
MAX_LABELS = 50
TRUNCATED = "…[truncated]"


# ---------------------------------------------------------------- signatures


def hmac_hex(secret: bytes, message: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret, message, algorithm).hexdigest()


def any_hmac_matches(secrets: Iterable[bytes], message: bytes, candidates: Iterable[str]) -> bool:
    """Whether one of the hex signatures is HMAC-SHA256(secret, message) for one of the secrets (constant time)."""
    wanted = [c.strip().lower().encode() for c in candidates if c]
    ok = False
    for secret in secrets:
        expected = hmac_hex(secret, message).encode()
        for cand in wanted:
            ok |= hmac.compare_digest(expected, cand)  # no early exit: every comparison is made
    return ok


def matches_any_secret(secrets: Iterable[bytes], presented: str) -> bool:
    """Bearer tokens and passwords: constant-time equality against each configured secret."""
    given = presented.encode()
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(secret, given)
    return ok


def basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def bearer(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def check_skew(sent_at: float, ctx: Context, window_s: float, what: str) -> Rejection | None:
    age = ctx.now.timestamp() - sent_at
    if abs(age) > window_s:
        when = f"{age:.0f}s in the past" if age > 0 else f"{-age:.0f}s in the future"
        return Rejection(401, f"stale timestamp: {what} is {when} (window {window_s:.0f}s); replay refused")
    return None


def parse_int(text: str | None) -> int | None:
    if text is None or not re.fullmatch(r"\s*-?\d{1,20}\s*", text):
        return None
    return int(text)


# ---------------------------------------------------------------- reading provider JSON tolerantly


def parse_json_object(body: bytes) -> dict[str, Any] | Rejection:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return Rejection(400, f"body is not valid JSON: {str(exc)[:200]}")
    if not isinstance(data, dict):
        return Rejection(400, "body must be a JSON object")
    return data


def dig(data: Any, *path: str | int) -> Any:
    """`data[p0][p1]…` or None when any step is missing or of the wrong type."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(data, list) or not -len(data) <= key < len(data):
                return None
            data = data[key]
        else:
            if not isinstance(data, dict):
                return None
            data = data.get(key)
    return data


def text(value: Any, limit: int = 500) -> str | None:
    """A scalar as clipped text; None for missing, empty, or structured values."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    s = str(value).strip()
    if not s:
        return None
    return clip(s, limit)


def clip(s: str, limit: int) -> str:
    return s if len(s) <= limit else s[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def string_map(value: Any, limit: int = MAX_LABELS) -> dict[str, str]:
    """A provider's label/tag map as str -> str, clipped (keys 200, values 1000), at most `limit` entries."""
    out: dict[str, str] = {}
    items: Iterable[Any]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):  # [[k, v], ...] or [{"key": k, "value": v}, ...]
        items = []
        for entry in value:
            if isinstance(entry, list) and len(entry) == 2:
                items.append((entry[0], entry[1]))
            elif isinstance(entry, dict) and "key" in entry:
                items.append((entry.get("key"), entry.get("value")))
    else:
        return out
    for k, v in items:
        key, val = text(k, 200), text(v, 1000)
        if key is None:
            continue
        out[key] = val or ""
        if len(out) >= limit:
            break
    return out


def links(*candidates: Any) -> list[str]:
    out: list[str] = []
    for c in candidates:
        s = text(c, 2000)
        if s and s.startswith(("http://", "https://")) and s not in out:
            out.append(s)
    return out[:20]


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (with Z, +00:00 or +0000), or epoch seconds/milliseconds; None when unusable."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            s = value.strip()
            if s.endswith("Z"):
                s = s[:-1] + "+00:00"
            elif re.search(r"[+-]\d{4}$", s):
                s = s[:-2] + ":" + s[-2:]
            parsed = datetime.fromisoformat(s)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            if parsed.year < 1971:
                return None
            return parsed
    except (ValueError, OverflowError, OSError):
        return None
    return None


def clip_raw(body: Any) -> str:
    """A size-limited copy of the provider's payload for the event (`raw`)."""
    try:
        dumped = orjson.dumps(body, default=str).decode()
    except TypeError:
        dumped = str(body)
    return clip(dumped, RAW_LIMIT)


# ---------------------------------------------------------------- classification hints

_KINDS = (
    ("latency", re.compile(r"latenc|slow|duration|response.?time|p9[059]|timeout", re.I)),
    ("availability", re.compile(r"\bdown\b|unavailab|unreachab|health|uptime|5xx|\b50[234]\b|availability", re.I)),
    ("saturation", re.compile(r"cpu|memory|\bmem\b|disk|saturat|queue|throttl|oom|capacity|connections", re.I)),
    ("error", re.compile(r"error|exception|fail|crash|panic", re.I)),
)


def guess_kind(*texts: str | None) -> str:
    """A coarse kind for triage from names and metric names; "metric" when nothing matches."""
    joined = " ".join(t for t in texts if t)
    for kind, pattern in _KINDS:
        if pattern.search(joined):
            return kind
    return "metric"


# ---------------------------------------------------------------- ids and events


def delivery_key(value: str | None) -> str | None:
    """A provider's delivery id as stored (hashed when longer than the column allows)."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    return value if len(value) <= 200 else "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def body_key(body: bytes) -> str:
    """Delivery id of a provider request that carries none: an identical retry has the same body."""
    return "body-sha256:" + hashlib.sha256(body).hexdigest()


def event_id_for(source: str, delivery_id: str | None, part: str = "") -> uuid.UUID:
    """A retried delivery maps to the same event id (and so the same Nats-Msg-Id); random without an id."""
    if delivery_id:
        return uuid.uuid5(DELIVERY_NAMESPACE, f"{source}:{delivery_id}{'#' + part if part else ''}")
    return uuid.uuid4()


def alert_event(
    ctx: Context,
    *,
    source: str,
    delivery_id: str | None,
    part: str = "",
    title: str | None,
    service: str | None,
    raw: Any,
    status: str = "firing",
    resource: str | None = None,
    description: str | None = None,
    severity_hint: str | None = None,
    labels: Mapping[str, str] | None = None,
    stack_trace: str | None = None,
    links_: list[str] | None = None,
    commit: str | None = None,
    version: str | None = None,
    fingerprint: str | None = None,
    fingerprint_inputs: Mapping[str, str] | None = None,
    kind: str | None = None,
    noise_hint: str | None = None,
    occurred_at: datetime | None = None,
) -> AlertReceived:
    """Build `alert.received` from already-extracted values, clipping everything to the schema's limits."""
    payload = AlertReceivedPayload(
        source=source,
        status="resolved" if status == "resolved" else "firing",
        service=clip(service or "unknown", 200),
        resource=clip(resource, 500) if resource else None,
        title=clip(title or "(untitled alert)", 500),
        description=clip(description or "", 20_000),
        severity_hint=clip(severity_hint, 50) if severity_hint else None,
        labels=dict(labels or {}),
        stack_trace=clip(stack_trace, 20_000) if stack_trace else None,
        links=list(links_ or [])[:20],
        commit=clip(commit, 100) if commit else None,
        version=clip(version, 100) if version else None,
        fingerprint=clip(fingerprint, 200) if fingerprint else None,
        fingerprint_inputs={k: v for k, v in string_map(dict(fingerprint_inputs or {})).items() if v},
        kind=clip(kind, 50) if kind else None,
        noise_hint=clip(noise_hint, 100) if noise_hint else None,
        occurred_at=occurred_at or ctx.now,
        delivery_id=delivery_id[:300] if delivery_id else None,
        raw=clip_raw(raw),
    )
    return AlertReceived.create(
        payload, source="ingest", team=ctx.team, event_id=event_id_for(source, delivery_id, part)
    )

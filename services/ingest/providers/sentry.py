"""`POST /webhooks/sentry`: integration-platform webhooks; issues, alert-rule events and errors (with their trace
and each frame's captured local variables)."""

from __future__ import annotations

import ast
import re
from typing import Any

from schemas.events import AlertReceived, FrameVars
from services.ingest.providers import common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest
from services.ingest.providers.common import dig, text
from services.ingest.providers.generic import MAX_VALUE_CHARS, CapturedFrame, bounded_frame_vars

NAME = "sentry"
MAX_FRAMES = 60
FILTERED = "[Filtered]"  # what Sentry's data scrubbing leaves in place of a value
_DROP = object()  # a value that cannot travel as plain JSON


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """`Sentry-Hook-Signature`: hex HMAC-SHA256 of the raw body with the integration's client secret."""
    sig = req.header("sentry-hook-signature")
    if not sig:
        return Rejection(401, "missing Sentry-Hook-Signature")
    if not re.fullmatch(r"\s*[0-9a-fA-F]{64}\s*", sig):
        return Rejection(401, "malformed Sentry-Hook-Signature (expected 64 hex digits)")
    if not common.any_hmac_matches(ctx.secrets, req.body, [sig]):
        return Rejection(401, "Sentry-Hook-Signature does not match")
    return None


# ---------------------------------------------------------------- stack traces


def _frame(f: Any) -> tuple[str, str, str, str, str]:
    path = text(dig(f, "abs_path"), 500) or text(dig(f, "filename"), 500) or "?"
    line = str(dig(f, "lineno")) if isinstance(dig(f, "lineno"), int) else "0"
    return (
        path,
        line,
        text(dig(f, "function"), 200) or "?",
        text(dig(f, "module"), 300) or "",
        text(dig(f, "context_line"), 500) or "",
    )


def render_trace(event: Any) -> str | None:
    """The event's exception(s) as the platform would print them, so diagnosis can parse the trace."""
    values = dig(event, "exception", "values")
    if not isinstance(values, list) or not values:
        return None
    platform = (text(dig(event, "platform"), 50) or "python").lower()
    chunks = []
    chained = values[-3:]  # chained exceptions, oldest first: the last is the one that was raised
    if platform == "java":  # a JVM prints the outermost first, then each cause as `Caused by:`
        chained = list(reversed(chained))
    for n, exc in enumerate(chained):
        frames = dig(exc, "stacktrace", "frames")
        frames = [_frame(f) for f in frames[-MAX_FRAMES:] if isinstance(f, dict)] if isinstance(frames, list) else []
        etype, evalue = text(dig(exc, "type"), 200) or "Error", text(dig(exc, "value"), 2000) or ""
        if platform in ("javascript", "node"):
            lines = [f"{etype}: {evalue}"] + [f"    at {fn} ({p}:{ln}:0)" for p, ln, fn, _m, _c in reversed(frames)]
        elif platform == "java":
            package = text(dig(exc, "module"), 300)  # Sentry sends the class and its package apart
            etype = f"{package}.{etype}" if package and "." not in etype else etype
            lines = [f"{'Caused by: ' if n else ''}{etype}: {evalue}"] + [
                f"\tat {m + '.' if m else ''}{fn}({p.rsplit('/', 1)[-1]}:{ln})" for p, ln, fn, m, _c in reversed(frames)
            ]
        elif platform == "ruby":  # as a logged exception prints its backtrace, innermost first
            lines = [f"{etype}: {evalue}"] + [f"  {p}:{ln}:in '{fn}'" for p, ln, fn, _m, _c in reversed(frames)]
        elif platform == "go":
            lines = [f"panic: {etype}: {evalue}", "", "goroutine 1 [running]:"]
            for p, ln, fn, m, _c in reversed(frames):
                lines += [f"{m + '.' if m else ''}{fn}(...)", f"\t{p}:{ln} +0x0"]
        else:
            lines = ["Traceback (most recent call last):"]
            for p, ln, fn, _m, ctx_line in frames:
                lines.append(f'  File "{p}", line {ln}, in {fn}')
                if ctx_line:
                    lines.append(f"    {ctx_line}")
            lines.append(f"{etype}: {evalue}" if evalue else etype)
        chunks.append("\n".join(lines))
    return ("\n" if platform == "java" else "\n\n").join(chunks)


# ---------------------------------------------------------------- captured local variables


def _from_repr(value: str) -> Any:
    """A scalar from its Python repr (`'SAVE10'`, `42`, `None`, `True`); `_DROP` for anything else: an object's
    `<Cart object at 0x…>`, a value cut short by the SDK (`'aaa...`), a container printed as text."""
    if len(value) > MAX_VALUE_CHARS:
        return _DROP
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _DROP
    return parsed if parsed is None or isinstance(parsed, (bool, int, float, str)) else _DROP


def _key(key: Any, python: bool) -> str | None:
    if not isinstance(key, str):
        return None
    quoted = len(key) >= 2 and key[0] == key[-1] and key[0] in "'\""
    if python and quoted:  # older Python SDKs (raven) printed the keys too: `"'event_id'"`
        parsed = _from_repr(key)
        return parsed if isinstance(parsed, str) else None
    return key


def _json_value(value: Any, python: bool) -> Any:
    """A captured variable as the value it held. The Python SDK sends every scalar in `vars` as its repr (so a
    string and a number look apart in Sentry's UI); other SDKs send JSON as it is. Scrubbed values are dropped."""
    if isinstance(value, str):
        if value == FILTERED:
            return _DROP
        return _from_repr(value) if python else value
    if isinstance(value, list):
        items = [_json_value(item, python) for item in value]
        return _DROP if any(item is _DROP for item in items) else items
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key, item = _key(k, python), _json_value(v, python)
            if key is None or item is _DROP:
                return _DROP
            out[key] = item
        return out
    return value  # null, booleans and numbers, as JSON carried them


def frame_vars(event: Any) -> list[FrameVars]:
    """The raised exception's frames with their captured variables (`vars`), innermost last, as plain values.

    Library frames are left out when the SDK marked any frame as the application's (`in_app`). A variable Sentry
    annotated in `_meta` (trimmed, truncated or scrubbed) is dropped: it is no longer the value the call had.
    """
    values = dig(event, "exception", "values")
    if not isinstance(values, list):
        return []
    python = (text(dig(event, "platform"), 50) or "python").lower() == "python"
    with_frames = [(i, v) for i, v in enumerate(values) if isinstance(dig(v, "stacktrace", "frames"), list)]
    if not with_frames:
        return []
    index, raised = with_frames[-1]  # chained exceptions: the last is the one that was raised
    frames = dig(raised, "stacktrace", "frames")
    app_only = any(isinstance(f, dict) and f.get("in_app") is True for f in frames)
    captured: list[CapturedFrame] = []
    for position, f in enumerate(frames):
        if not isinstance(f, dict) or not isinstance(f.get("vars"), dict) or (app_only and f.get("in_app") is False):
            continue
        meta = dig(event, "_meta", "exception", "values", str(index), "stacktrace", "frames", str(position), "vars")
        variables: dict[str, Any] = {}
        for name, value in f["vars"].items():
            key, plain = _key(name, python), _json_value(value, python)
            if key is None or plain is _DROP or (isinstance(meta, dict) and name in meta):
                continue
            variables[key] = plain
        line = dig(f, "lineno")
        captured.append(CapturedFrame(
            file=text(dig(f, "abs_path"), 1000) or text(dig(f, "filename"), 1000) or "",
            function=text(dig(f, "function"), 500) or "",
            line=line if isinstance(line, int) and not isinstance(line, bool) else None,
            vars=variables,
        ))  # fmt: skip
    return bounded_frame_vars(captured)


def _with_frame_vars(alert: AlertReceived, captured: list[FrameVars]) -> AlertReceived:
    if not captured:
        return alert
    return alert.model_copy(update={"payload": alert.payload.model_copy(update={"frame_vars": captured})})


def _project_slug(event: Any) -> str | None:
    for key in ("url", "web_url", "issue_url"):
        m = re.search(r"/projects/[^/]+/([^/]+)/", text(dig(event, key), 2000) or "")
        if m:
            return m.group(1)
    return None


# ---------------------------------------------------------------- resources


def _issue(data: Any, action: str, ctx: Context, delivery: str) -> Delivery:
    if action not in ("created", "unresolved", "resolved"):
        return Delivery.ignored(delivery, f"issue {action} is not an alert for pagerpatch")
    issue = dig(data, "data", "issue")
    meta = dig(issue, "metadata")
    issue_id = text(dig(issue, "id"), 100)
    project = text(dig(issue, "project", "slug"), 200)
    details = [text(dig(issue, "culprit"), 2000), text(dig(meta, "value"), 2000), text(dig(meta, "filename"), 500)]
    alert = common.alert_event(
        ctx,
        source=NAME,
        delivery_id=delivery,
        status="resolved" if action == "resolved" else "firing",
        title=text(dig(issue, "title"), 500),
        service=project,
        resource=text(dig(issue, "culprit"), 500),
        description="\n".join(d for d in details if d),
        severity_hint=text(dig(issue, "level"), 50) or text(dig(issue, "priority"), 50),
        labels={
            k: v
            for k, v in {
                "level": text(dig(issue, "level")),
                "short_id": text(dig(issue, "shortId")),
                "platform": text(dig(issue, "platform")),
                "project": project,
                "substatus": text(dig(issue, "substatus")),
            }.items()
            if v
        },
        links_=common.links(dig(issue, "web_url"), dig(issue, "permalink")),
        fingerprint_inputs={"issue": issue_id or "", "project": project or ""},
        kind="error",
        occurred_at=common.parse_time(dig(issue, "lastSeen")) or common.parse_time(dig(issue, "firstSeen")),
        raw=data,
    )
    return Delivery(delivery_id=delivery, events=(alert,))


def _event(data: Any, resource: str, ctx: Context, delivery: str) -> Delivery:
    event = dig(data, "data", "event") if resource == "event_alert" else dig(data, "data", "error")
    if not isinstance(event, dict):
        return Delivery.ignored(delivery, f"{resource} without an event")
    tags = common.string_map(dig(event, "tags"))
    issue_id = text(dig(event, "issue_id"), 100) or text(dig(event, "groupID"), 100)
    project = tags.get("service") or _project_slug(event)
    rule = text(dig(data, "data", "triggered_rule"), 500)
    inputs = {"issue": issue_id} if issue_id else {"title": text(dig(event, "title"), 500) or ""}
    alert = common.alert_event(
        ctx,
        source=NAME,
        delivery_id=delivery,
        title=text(dig(event, "title"), 500) or text(dig(event, "message"), 500),
        service=project,
        resource=text(dig(event, "culprit"), 500) or text(dig(event, "location"), 500),
        description="\n".join(
            x for x in (f"alert rule: {rule}" if rule else None, text(dig(event, "message"), 5000)) if x
        ),
        severity_hint=text(dig(event, "level"), 50),
        labels=tags,
        stack_trace=render_trace(event),
        links_=common.links(dig(event, "web_url"), dig(event, "issue_url")),
        version=text(dig(event, "release"), 100),
        fingerprint_inputs={**inputs, "project": project or ""},
        kind="error",
        occurred_at=common.parse_time(dig(event, "datetime")) or common.parse_time(dig(event, "timestamp")),
        raw=data,
    )
    return Delivery(delivery_id=delivery, events=(_with_frame_vars(alert, frame_vars(event)),))


def _metric_alert(data: Any, action: str, ctx: Context, delivery: str) -> Delivery:
    if action not in ("critical", "warning", "resolved"):
        return Delivery.ignored(delivery, f"metric alert {action} is not an alert for pagerpatch")
    alert_obj = dig(data, "data", "metric_alert")
    rule = dig(alert_obj, "alert_rule")
    projects = dig(rule, "projects")
    alert = common.alert_event(
        ctx,
        source=NAME,
        delivery_id=delivery,
        status="resolved" if action == "resolved" else "firing",
        title=text(dig(data, "data", "description_title"), 500) or text(dig(rule, "name"), 500),
        service=text(projects[0], 200) if isinstance(projects, list) and projects else None,
        description=text(dig(data, "data", "description_text"), 5000),
        severity_hint=action if action != "resolved" else None,
        links_=common.links(dig(data, "data", "web_url")),
        fingerprint_inputs={"alert_rule": text(dig(rule, "id"), 100) or text(dig(rule, "name"), 500) or ""},
        kind=common.guess_kind(text(dig(rule, "aggregate"), 200), text(dig(rule, "name"), 500)),
        occurred_at=common.parse_time(dig(alert_obj, "date_started")),
        raw=data,
    )
    return Delivery(delivery_id=delivery, events=(alert,))


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    resource = (req.header("sentry-hook-resource") or "").strip()
    if not resource:
        return Rejection(400, "missing Sentry-Hook-Resource header")
    data = common.parse_json_object(req.body)
    if isinstance(data, Rejection):
        return data
    delivery = common.delivery_key(req.header("request-id")) or common.body_key(req.body)
    action = text(dig(data, "action"), 100) or ""
    if resource == "issue":
        return _issue(data, action, ctx, delivery)
    if resource in ("event_alert", "error"):
        return _event(data, resource, ctx, delivery)
    if resource == "metric_alert":
        return _metric_alert(data, action, ctx, delivery)
    return Delivery.ignored(delivery, f"{resource} {action}".strip() + " is not used by pagerpatch")


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_SENTRY_CLIENT_SECRET",
)

"""Observability tools for the investigation agent: Prometheus and Loki range queries over their HTTP APIs.

Declared in config/tools.yaml (`observability:read`). Each is offered only when its URL is configured
(`observability.prometheus_url`, `observability.loki_url`); `PAGERPATCH_PROMETHEUS_TOKEN` / `PAGERPATCH_LOKI_TOKEN`
go out as `Authorization: Bearer`. Answers are summarised compactly (a series is a few numbers and a short trend,
a log query is its lines with the streams named once); every failure of the API (status "error", HTTP 4xx/5xx,
timeouts, unreachable) comes back as a tool error text, never as an exception.

Times (`start`, `end`) are RFC 3339, unix seconds, `now`, or relative to now: `now-2h`, `-30m`. "Now" is the
`now` the caller passes in the tool context (e.g. the alert's time), else the current time.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from pagerpatch.llm.registry import ToolContext, ToolOutput, available_when
from pagerpatch.settings import Settings

DEFAULT_RANGE_S = 3600.0
TARGET_POINTS = 120  # default step: the range over this many points (at least 15 s)
TREND_POINTS = 12  # values shown per series
LINE_CHARS = 400  # a log line longer than this is cut
GET_LIMIT = 1500  # a longer query is sent as a POST form (Prometheus accepts both)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class ToolInputError(ValueError):
    """An argument the model gave cannot be used; its message is shown to the model."""


# ------------------------------------------------------------------ times
def parse_duration(text: str) -> float:
    """`90s`, `5m`, `1h30m`, `2d` (Prometheus durations) or plain seconds -> seconds."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    parts = _DURATION.findall(t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise ToolInputError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_time(value: str | float | int | None, now: datetime, default: datetime) -> datetime:
    """RFC 3339, unix seconds, `now`, `now-1h` or `-1h` -> an aware datetime."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    t = value.strip()
    if t == "now":
        return now
    rel = t.removeprefix("now")
    if rel.startswith("-"):
        return datetime.fromtimestamp(now.timestamp() - parse_duration(rel[1:]), UTC)
    try:
        return datetime.fromtimestamp(float(t), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ToolInputError(f"not a time: {value!r} (use RFC 3339, unix seconds, 'now' or 'now-1h')") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _reference_now(ctx: ToolContext | None) -> datetime:
    given = ctx.extra.get("now") if ctx is not None else None
    if isinstance(given, datetime):
        return given if given.tzinfo else given.replace(tzinfo=UTC)
    if isinstance(given, str):
        return parse_time(given, datetime.now(UTC), datetime.now(UTC))
    return datetime.now(UTC)


def time_range(start: str | None, end: str | None, ctx: ToolContext | None) -> tuple[datetime, datetime]:
    now = _reference_now(ctx)
    stop = parse_time(end, now, now)
    begin = parse_time(start, now, datetime.fromtimestamp(stop.timestamp() - DEFAULT_RANGE_S, UTC))
    if begin >= stop:
        raise ToolInputError(f"start ({_iso(begin)}) must be before end ({_iso(stop)})")
    return begin, stop


def _iso(t: datetime | float) -> str:
    when = t if isinstance(t, datetime) else datetime.fromtimestamp(t, UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _num(v: float) -> str:
    return "NaN" if math.isnan(v) else f"{v:.4g}"


# ------------------------------------------------------------------ HTTP
def _safe_url(url: str) -> str:
    """The URL without user:password (for messages)."""
    p = urlsplit(url)
    return urlunsplit(p._replace(netloc=p.hostname + (f":{p.port}" if p.port else ""))) if p.hostname else url


def _headers(token: Any, tenant: str | None = None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "pagerpatch-investigation"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    return headers


def api_error(api: str, status: int | None, body: bytes, content_type: str) -> str:
    """The API's own error message: Prometheus/Loki JSON (`errorType`, `error`) or Loki's plain text."""
    code = f" {status}" if status is not None else ""
    detail = ""
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and (data.get("error") or data.get("message")):
            kind = f" ({data['errorType']})" if data.get("errorType") else ""
            detail = f"{kind}: {data.get('error') or data.get('message')}"
    if not detail:
        text = body.decode("utf-8", "replace").strip()
        detail = f": {text[:500]}" if text else ""
    hint = ""
    if status in (401, 403):
        hint = f" (check PAGERPATCH_{api.upper()}_TOKEN)"
    return f"{api} answered{code}{detail}{hint}"


async def _call(
    api: str, url: str, params: dict[str, str], headers: dict[str, str], timeout_s: float
) -> dict[str, Any] | str:
    """The `data` of a successful answer, or the error text."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            if sum(len(v) for v in params.values()) > GET_LIMIT:
                resp = await client.post(url, data=params, headers=headers)
            else:
                resp = await client.get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        return f"{api} did not answer within {timeout_s:g}s (observability.timeout_s) at {_safe_url(url)}"
    except httpx.HTTPError as exc:
        return f"could not reach {api} at {_safe_url(url)}: {type(exc).__name__}: {exc}"
    ctype = resp.headers.get("content-type", "")
    if resp.status_code >= 400:
        return api_error(api, resp.status_code, resp.content, ctype)
    try:
        doc = resp.json()
    except ValueError:
        return f"{api} answered {resp.status_code} with something that is not its JSON API: {resp.text[:200]!r}"
    if not isinstance(doc, dict) or doc.get("status") != "success":
        return api_error(api, resp.status_code, resp.content, "json")
    data = doc.get("data")
    if not isinstance(data, dict):
        return f"{api} answered without a `data` object"
    warnings = doc.get("warnings") or []
    if warnings:
        data = {**data, "_warnings": [str(w) for w in warnings]}
    return data


# ------------------------------------------------------------------ summaries
def _labels(metric: Mapping[str, Any]) -> str:
    name = str(metric.get("__name__", ""))
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def summarize_matrix(result: list[dict[str, Any]], max_series: int) -> tuple[list[str], list[str]]:
    """Lines for the model and facts: per series its points, min/max/avg/last and a short trend."""
    lines: list[str] = []
    facts: list[str] = []
    for series in result[:max_series]:
        samples = [(float(t), float(v)) for t, v in series.get("values") or []]
        label = _labels(series.get("metric") or {})
        finite = [(t, v) for t, v in samples if math.isfinite(v)]
        if not finite:
            lines.append(f"{label}: {len(samples)} points, no finite value")
            facts.append(f"{label}: no finite value")
            continue
        values = [v for _, v in finite]
        t_max, v_max = max(finite, key=lambda tv: tv[1])
        t_last, v_last = finite[-1]
        stride = max(1, math.ceil(len(samples) / TREND_POINTS))
        trend = [_num(v) for _, v in samples[::stride]]
        if (len(samples) - 1) % stride:
            trend.append(_num(samples[-1][1]))
        lines.append(
            f"{label}: {len(samples)} points {_iso(samples[0][0])}..{_iso(samples[-1][0])}; min {_num(min(values))}"
            f" max {_num(v_max)} at {_iso(t_max)} avg {_num(sum(values) / len(values))} last {_num(v_last)}"
            f"\n  trend: {' '.join(trend)}"
        )
        facts.append(f"{label}: max {_num(v_max)} at {_iso(t_max)}, last {_num(v_last)} at {_iso(t_last)}")
    if len(result) > max_series:
        more = f"[{len(result) - max_series} more series not shown; aggregate (sum by, topk) to narrow]"
        lines.append(more)
        facts.append(f"{len(result)} series in all")
    return lines, facts


def _other_result(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        rows = [f"{_labels(r.get('metric') or {})} = {r.get('value', [None, '?'])[1]}" for r in result]
        return rows, rows[:10]
    return [f"{kind}: {result}"], [f"{kind}: {str(result)[:200]}"]


def _header(api: str, query: str, begin: datetime, end: datetime, extra: str) -> str:
    return f"{api} {query!r} from {_iso(begin)} to {_iso(end)}{extra}"


# ------------------------------------------------------------------ the tools
def _prometheus_on(settings: Settings) -> bool:
    return settings.observability.prometheus_url is not None


def _loki_on(settings: Settings) -> bool:
    return settings.observability.loki_url is not None


@available_when(_prometheus_on)
async def prometheus_query(
    query: str,
    settings: Settings,
    ctx: ToolContext | None = None,
    start: str | None = None,
    end: str | None = None,
    step: str | None = None,
) -> ToolOutput:
    """A PromQL range query (GET/POST /api/v1/query_range), each series summarised."""
    obs = settings.observability
    if obs.prometheus_url is None:
        return ToolOutput(text="prometheus_query is not configured (observability.prometheus_url)", is_error=True)
    try:
        begin, stop = time_range(start, end, ctx)
        step_s = parse_duration(step) if step else max(15.0, math.ceil((stop - begin).total_seconds() / TARGET_POINTS))
        if step_s <= 0:
            raise ToolInputError("step must be positive")
    except ToolInputError as exc:
        return ToolOutput(text=f"invalid arguments: {exc}", is_error=True)
    params = {"query": query, "start": _iso(begin), "end": _iso(stop), "step": f"{step_s:g}s"}
    url = f"{obs.prometheus_url}/api/v1/query_range"
    data = await _call("prometheus", url, params, _headers(settings.prometheus_token), obs.timeout_s)
    if isinstance(data, str):
        return ToolOutput(text=data, facts=[data[:300]], is_error=True)
    result = data.get("result") or []
    header = _header("prometheus", query, begin, stop, f" step {step_s:g}s: {len(result)} series")
    if data.get("resultType") == "matrix":
        lines, facts = summarize_matrix(result, obs.max_series)
    else:
        lines, facts = _other_result(data)
    notes = [f"warning: {w}" for w in data.get("_warnings", [])]
    if not result:
        facts = [f"no series for {query!r} from {_iso(begin)} to {_iso(stop)}"]
    return ToolOutput(text="\n".join([header, *lines, *notes]), facts=[header, *facts][:12])


@available_when(_loki_on)
async def loki_query(
    query: str,
    settings: Settings,
    ctx: ToolContext | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: int = 100,
    direction: str = "backward",
) -> ToolOutput:
    """A LogQL range query (GET /loki/api/v1/query_range): log lines with their streams, or series for metric
    queries."""
    obs = settings.observability
    if obs.loki_url is None:
        return ToolOutput(text="loki_query is not configured (observability.loki_url)", is_error=True)
    if direction not in ("backward", "forward"):
        return ToolOutput(text="invalid arguments: direction must be 'backward' or 'forward'", is_error=True)
    try:
        begin, stop = time_range(start, end, ctx)
    except ToolInputError as exc:
        return ToolOutput(text=f"invalid arguments: {exc}", is_error=True)
    limit = max(1, min(limit, obs.max_lines))
    params = {
        "query": query,
        "start": str(int(begin.timestamp() * 1e9)),
        "end": str(int(stop.timestamp() * 1e9)),
        "limit": str(limit),
        "direction": direction,
    }
    url = f"{obs.loki_url}/loki/api/v1/query_range"
    data = await _call("loki", url, params, _headers(settings.loki_token, obs.loki_tenant), obs.timeout_s)
    if isinstance(data, str):
        return ToolOutput(text=data, facts=[data[:300]], is_error=True)
    result = data.get("result") or []
    if data.get("resultType") == "matrix":
        lines, facts = summarize_matrix(result, obs.max_series)
        header = _header("loki", query, begin, stop, f": {len(result)} series")
        return ToolOutput(text="\n".join([header, *lines]), facts=[header, *facts][:12])
    if data.get("resultType") != "streams":
        lines, facts = _other_result(data)
        return ToolOutput(text="\n".join(lines), facts=facts)
    return _streams(query, begin, stop, result, limit, direction)


def _streams(
    query: str, begin: datetime, stop: datetime, result: list[dict[str, Any]], limit: int, direction: str
) -> ToolOutput:
    names: list[str] = []
    entries: list[tuple[int, int, str]] = []  # (ns, stream index, line)
    for i, stream in enumerate(result):
        names.append(_labels(stream.get("stream") or {}))
        for ts, line in stream.get("values") or []:
            entries.append((int(ts), i, str(line)))
    entries.sort(key=lambda e: e[0], reverse=direction == "backward")
    header = _header("loki", query, begin, stop, f": {len(entries)} lines from {len(names)} streams")
    if not entries:
        return ToolOutput(text=header, facts=[f"no log lines for {query!r} from {_iso(begin)} to {_iso(stop)}"])
    out = [header] + [f"[s{i + 1}] {name}" for i, name in enumerate(names)]
    for ns, i, line in entries:
        when = datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " …"
        out.append(f"{when} s{i + 1} {text}")
    if len(entries) >= limit:
        out.append(f"[limit of {limit} lines reached: narrow the query or the range to see others]")
    first, last = min(e[0] for e in entries), max(e[0] for e in entries)
    common = Counter(e[2][:200] for e in entries).most_common(3)
    facts = [
        f"{len(entries)} log lines from {len(names)} streams between {_iso(first / 1e9)} and {_iso(last / 1e9)}",
        *(f"{n}x: {line}" for line, n in common),
    ]
    return ToolOutput(text="\n".join(out), facts=facts)

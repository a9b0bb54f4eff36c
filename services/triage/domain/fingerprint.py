"""Identity of an alert (pure): normalized text, top stack frames, the alert's fingerprint and its group.

Two keys come out of every alert:
- the *group key* (the incident family, stored as `incidents.fingerprint`): alerts with the same group key
  belong to one incident — the same error site in one service, or the same alert rule in one service,
  whichever replica or resource reported it;
- the *fingerprint*: the alert itself within its group (the group plus the source and the normalized
  resource), whose history decides flapping and short spikes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from pagerpatch.traces.stacktrace import ParsedTrace, parse_trace
from schemas.events import AlertReceivedPayload

_NAME = r"\b([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)"  # a workload name before its replica suffix
# Order matters: the specific shapes first, then the generic number/hex rules would eat their parts.
_VOLATILE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(z|[+-]\d{2}:?\d{2})?\b", re.I), "<ts>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b"), "<time>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    # Replica host names: Kubernetes pods (deployment-<template hash>-<suffix>, statefulset-<n>),
    # EC2 instance ids and host names, IP addresses.
    (re.compile(_NAME + r"-(?=[a-z0-9]*\d)[a-z0-9]{6,10}-[a-z0-9]{5}\b", re.I), r"\1-<pod>"),
    (re.compile(_NAME + r"-(?=[a-z0-9]*\d)[a-z0-9]{5}\b(?!-)", re.I), r"\1-<pod>"),
    (re.compile(r"\bi-[0-9a-f]{8,17}\b", re.I), "<instance>"),
    (re.compile(r"\bip-\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}\b", re.I), "<host>"),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{16,}\b", re.I), "<id>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
    (re.compile(r"(?<!\w)'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\s+"), " "),
]

# Label / input keys that name *where* an alert fired (a replica, a host), not *what* fired.
RESOURCE_KEYS = frozenset(
    {"instance", "pod", "pod_name", "host", "hostname", "node", "nodename", "container", "container_id",
     "replica", "ip", "instance_id", "resource", "resource_id", "dimension_instanceid", "task_id", "machine"}
)  # fmt: skip


SEVERITY_KEYS = frozenset({"severity", "priority", "level", "urgency"})
TEXT_KEYS = frozenset({"title", "subject", "summary", "message", "description", "name"})


def normalize_title(title: str) -> str:
    """Lower-case text with ids, numbers, timestamps, replica names and quoted values replaced."""
    text = title.strip().lower()
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return text.strip()


@lru_cache(maxsize=1024)
def _parsed(stack_trace: str) -> ParsedTrace | None:
    """Parsed once per distinct trace (a storm repeats the same one)."""
    return parse_trace(stack_trace)


def top_frames(stack_trace: str | None, n: int = 3) -> list[str]:
    """The innermost `n` frames as `file-basename:function` (line numbers move between deploys)."""
    if not stack_trace:
        return []
    parsed = _parsed(stack_trace)
    if parsed is None:
        return []
    frames = parsed.frames[-n:]
    return [f"{f.file.rsplit('/', 1)[-1]}:{f.function}" for f in frames]


def exception_type(stack_trace: str | None) -> str | None:
    if not stack_trace:
        return None
    parsed = _parsed(stack_trace)
    return parsed.exception_type if parsed else None


def canonical_inputs(inputs: dict[str, str]) -> str:
    """The identifying parts as sorted `key=value` pairs, without where (resource keys) and how bad (severity).

    Ids chosen by a provider's normalizer (alarm ARN, issue id, rule uid) are kept verbatim; free-text parts
    (a title, a subject) are normalized like titles.
    """
    pairs = []
    for key, value in inputs.items():
        k = key.strip().lower()
        if k in RESOURCE_KEYS or k in SEVERITY_KEYS:
            continue
        pairs.append((k, normalize_title(value) if k in TEXT_KEYS else value.strip().lower()))
    return ";".join(f"{k}={v}" for k, v in sorted(pairs))


def resource_of(alert: AlertReceivedPayload) -> str | None:
    """Where the alert fired, as sent (the blast radius counts these)."""
    if alert.resource:
        return alert.resource
    for source in (alert.fingerprint_inputs, alert.labels):
        for key in ("resource", "instance", "pod", "host", "hostname", "node", "instance_id"):
            if source.get(key):
                return source[key]
    return None


@dataclass(frozen=True)
class AlertKeys:
    group_key: str
    fingerprint: str
    resource: str | None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def keys(alert: AlertReceivedPayload) -> AlertKeys:
    """Group key and fingerprint of an alert (see the module docstring)."""
    resource = resource_of(alert)
    if alert.fingerprint:  # the sender says which alerts are the same problem
        return AlertKeys(alert.fingerprint, alert.fingerprint, resource)
    frames = top_frames(alert.stack_trace)
    if frames:  # an error: the same exception at the same code, whichever source or replica reported it
        group = _digest("trace", alert.service, exception_type(alert.stack_trace) or "", *frames)
    else:
        identity = canonical_inputs(alert.fingerprint_inputs) or normalize_title(alert.title)
        group = _digest("alert", alert.service, alert.source, identity)
    return AlertKeys(group, _digest(group, alert.source, normalize_title(resource or "")), resource)


def fingerprint(alert: AlertReceivedPayload) -> str:
    """The incident family an alert belongs to (`incidents.fingerprint`)."""
    return keys(alert).group_key

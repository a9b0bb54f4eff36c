"""Identity of an alert (pure): normalized text, top stack frames, the alert's fingerprint and its group.

Two keys come out of every alert:
- the *group key* (the incident family, stored as `incidents.fingerprint`): alerts with the same group key
  belong to one incident — the same error site in one service, or the same alert rule in one service,
  whichever replica or resource reported it;
- the *fingerprint*: the alert itself within its group (the group plus the source and the normalized
  resource), whose history decides flapping and short spikes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from pagerpatch.traces.identity import signature
from pagerpatch.traces.stacktrace import ParsedTrace, parse_trace
from schemas.events import AlertReceivedPayload

_NAME = r"\b([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)"  # a workload name before its replica suffix
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# A replica's suffix: a Deployment's `-<template hash>-<5 chars>`, a DaemonSet's `-<5 chars>`, a StatefulSet's `-<n>`.
_REPLICA = re.compile(r"-(?=[a-z0-9]*\d)[a-z0-9]{6,10}-[a-z0-9]{5}$|-(?=[a-z0-9]*\d)[a-z0-9]{5}$|-\d+$")


def _kubelet_pod(match: re.Match[str]) -> str:
    """The kubelet's `<pod>_<namespace>(<pod uid>)`: the workload and namespace stay, the replica and uid go."""
    workload = _REPLICA.sub("", match[1])
    return f"{workload}-<pod>_{match[2]}(<uuid>)"


# Order matters: the specific shapes first, then the generic number/hex rules would eat their parts.
_VOLATILE: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"\b([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)_([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\((" + _UUID + r")\)", re.I),
        _kubelet_pod,
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(z|[+-]\d{2}:?\d{2})?\b", re.I), "<ts>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b"), "<time>"),
    (re.compile(r"\b" + _UUID + r"\b", re.I), "<uuid>"),
    # Replica host names: Kubernetes pods (deployment-<template hash>-<suffix>, statefulset-<n>),
    # EC2 instance ids and host names, IP addresses.
    (re.compile(_NAME + r"-(?=[a-z0-9]*\d)[a-z0-9]{6,10}-[a-z0-9]{5}\b", re.I), r"\1-<pod>"),
    (re.compile(_NAME + r"-(?=[a-z0-9]*\d)[a-z0-9]{5}\b(?!-)", re.I), r"\1-<pod>"),
    (re.compile(r"\bi-[0-9a-f]{8,17}\b", re.I), "<instance>"),
    (re.compile(r"\bip-\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}\b", re.I), "<host>"),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.I), "<hex>"),
    # Git short hashes (7-11 characters): a digit and a letter, so plain numbers and words stay what they are.
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,11}\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{16,}\b", re.I), "<id>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
    (re.compile(r"(?<!\w)'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\s+"), " "),
]

# Label / input keys that name *where* an alert fired (a replica, a host, the Kubernetes object), not *what* fired:
# the pods of one failing deployment are one alert rule firing on many resources.
RESOURCE_KEYS = frozenset(
    {"instance", "pod", "pod_name", "host", "hostname", "node", "nodename", "container", "container_id",
     "container_name", "replica", "ip", "instance_id", "resource", "resource_id", "dimension_instanceid", "task_id",
     "machine", "exported_pod", "exported_container", "exported_instance", "persistentvolumeclaim",
     "persistentvolume", "deployment", "statefulset", "daemonset", "replicaset", "job_name", "cronjob",
     "horizontalpodautoscaler", "poddisruptionbudget", "mountpoint", "device", "fstype"}
)  # fmt: skip
# Labels that change on every restart or scrape replica and identify nothing (`triage.volatile_labels`).
DEFAULT_VOLATILE_LABELS = (
    "uid", "id", "name", "prometheus_replica", "container_id", "image_id", "pod_template_hash",
    "controller_revision_hash",
)  # fmt: skip
SEVERITY_KEYS = frozenset({"severity", "priority", "level", "urgency"})
TEXT_KEYS = frozenset({"title", "subject", "summary", "message", "description", "name"})
_EC2_INSTANCE = re.compile(r"\bi-[0-9a-f]{8,17}\b", re.I)


@dataclass(frozen=True)
class IdentityRules:
    """The configurable parts of an alert's identity: labels to ignore, and how CloudWatch alarms are grouped."""

    volatile_labels: frozenset[str] = frozenset(DEFAULT_VOLATILE_LABELS)
    # Service globs whose CloudWatch alarms stay one incident per EC2 instance; every other service's alarms that
    # embed an instance id are one incident per alarm family (an auto-scaling group), the instances its members.
    cloudwatch_per_instance: tuple[str, ...] = field(default_factory=tuple)

    def per_instance(self, service: str, alarm: str) -> bool:
        """Whether the glob list names this alarm's service or the alarm itself (per-instance alarms often have only
        the instance id as their service)."""
        names = (service.lower(), alarm.lower())
        return any(fnmatch.fnmatchcase(n, glob.lower()) for glob in self.cloudwatch_per_instance for n in names)


DEFAULT_RULES = IdentityRules()


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
    """The innermost `n` frames as `file-basename:function` (line numbers move between deploys; per language, the
    printing's quirks are normalized away: pagerpatch.traces.identity)."""
    if not stack_trace:
        return []
    parsed = _parsed(stack_trace)
    if parsed is None:
        return []
    return list(signature(parsed, n)[1])


def exception_type(stack_trace: str | None) -> str | None:
    """The bare exception class (`httpx.ReadTimeout` and Sentry's `ReadTimeout` are one error)."""
    if not stack_trace:
        return None
    parsed = _parsed(stack_trace)
    return signature(parsed, 0)[0] if parsed else None


def canonical_inputs(
    inputs: dict[str, str], rules: IdentityRules = DEFAULT_RULES, mask: Callable[[str], str] | None = None
) -> str:
    """The identifying parts as sorted `key=value` pairs, without where (resource keys), how bad (severity) and the
    volatile labels.

    Ids chosen by a provider's normalizer (alarm ARN, issue id, rule uid) are kept verbatim (`mask` may blank their
    volatile parts); free-text parts (a title, a subject) are normalized like titles.
    """
    pairs = []
    for key, value in inputs.items():
        k = key.strip().lower()
        if k in RESOURCE_KEYS or k in SEVERITY_KEYS or k in rules.volatile_labels:
            continue
        v = normalize_title(value) if k in TEXT_KEYS else value.strip().lower()
        pairs.append((k, mask(v) if mask else v))
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
    """An alert's group (its incident family), its own fingerprint in the group, and where it fired.

    `alias` is a second group the alert also belongs to: a Sentry event's issue, when its stack trace chose the
    group (a log of the same error lands there too). `linkable` groups are the ones an alias may point to (a Sentry
    issue without a trace: its issue webhook), so their reads follow a link left by the event that opened elsewhere.
    """

    group_key: str
    fingerprint: str
    resource: str | None
    alias: str | None = None
    linkable: bool = False


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _mask_instances(text: str) -> str:
    return _EC2_INSTANCE.sub("<instance>", text)


def keys(alert: AlertReceivedPayload, rules: IdentityRules = DEFAULT_RULES) -> AlertKeys:
    """Group key and fingerprint of an alert (see the module docstring)."""
    resource = resource_of(alert)
    if alert.fingerprint:  # the sender says which alerts are the same problem
        return AlertKeys(alert.fingerprint, alert.fingerprint, resource)
    frames = top_frames(alert.stack_trace)
    issue = alert.fingerprint_inputs.get("issue") if alert.source == "sentry" else None
    sentry_issue = _digest("sentry-issue", issue) if issue else None
    alias, linkable = None, False
    if frames:  # an error: the same exception at the same code, whichever source or replica reported it
        group = _digest("trace", alert.service, exception_type(alert.stack_trace) or "", *frames)
        alias = sentry_issue
    elif sentry_issue:  # Sentry's issue webhook: no trace, but the issue its events belong to
        group, linkable = sentry_issue, True
    else:
        service, mask = alert.service, None
        if (
            alert.source == "sns"
            and "alarm" in alert.fingerprint_inputs
            and not rules.per_instance(service, alert.title)
        ):
            # CloudWatch alarms named after an instance: one alarm family, each instance a member (its resource).
            service, mask = _mask_instances(service), _mask_instances
        identity = canonical_inputs(alert.fingerprint_inputs, rules, mask) or normalize_title(alert.title)
        group = _digest("alert", service, alert.source, identity)
    return AlertKeys(group, _digest(group, alert.source, normalize_title(resource or "")), resource, alias, linkable)


def regrouped(alert_keys: AlertKeys, group_key: str, source: str) -> AlertKeys:
    """The keys of an alert that joins another group (its alias's, or a linked one): its fingerprint is recomputed
    there, so the same alert from two webhooks (a Sentry issue and its event) is one member of that group."""
    fp = _digest(group_key, source, normalize_title(alert_keys.resource or ""))
    return replace(alert_keys, group_key=group_key, fingerprint=fp)


def fingerprint(alert: AlertReceivedPayload, rules: IdentityRules = DEFAULT_RULES) -> str:
    """The incident family an alert belongs to (`incidents.fingerprint`)."""
    return keys(alert, rules).group_key

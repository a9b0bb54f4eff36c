"""Which thing a Prometheus-style alert is about, from its labels (pure).

An alert's `instance` label names the scrape target: for node-exporter that is the host the alert is about, but for
kube-state-metrics, cAdvisor and the kubelet it is the exporter, the same for every pod, volume or node it reports
on. Taking `instance` as the resource made every pod one alert (the first pod's resolution closed an incident while
nine others were still being OOM-killed), so the Kubernetes object labels win when present.
"""

from __future__ import annotations

from collections.abc import Mapping

# Kubernetes objects an alert may be about, most specific first (kube-state-metrics and kube-prometheus names;
# `job_name` is kube-state-metrics' label for a Job, as `job` is the scrape job).
_OBJECTS = (
    "persistentvolumeclaim", "persistentvolume", "deployment", "statefulset", "daemonset", "replicaset",
    "job_name", "cronjob", "horizontalpodautoscaler", "poddisruptionbudget",
)  # fmt: skip
# A disk or file system on a host (node-exporter): one host may fill several.
_DEVICE = ("mountpoint", "device")


def resource_of(labels: Mapping[str, str]) -> str | None:
    """The resource an alert is about: its container, pod, Kubernetes object, node, or host (and disk).

    `namespace/pod[/container]` for pod and container alerts, `namespace/<kind>/<name>` for other namespaced
    objects, the node for node alerts, else `instance`; with `:<mount point or device>` for a disk alert.
    """
    namespace = labels.get("namespace") or labels.get("exported_namespace")
    prefix = f"{namespace}/" if namespace else ""
    pod = labels.get("pod") or labels.get("exported_pod") or labels.get("pod_name")
    kind = next((k for k in _OBJECTS if labels.get(k)), None)
    if pod:
        container = labels.get("container") or labels.get("exported_container") or labels.get("container_name")
        where = f"{prefix}{pod}/{container}" if container and container != "POD" else f"{prefix}{pod}"
    elif kind:
        where = f"{prefix}{kind.removesuffix('_name')}/{labels[kind]}"
    else:
        where = labels.get("node") or labels.get("instance") or labels.get("resource") or ""
    device = next((labels[k] for k in _DEVICE if labels.get(k)), None)
    if device:
        where = f"{where}:{device}" if where else device
    return where or None

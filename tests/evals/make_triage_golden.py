"""Writes services/triage/data/triage_golden.jsonl (package data): labelled alert sequences in the shapes ingest
normalizes providers to.

    .venv/bin/python tests/evals/make_triage_golden.py

Labels say what an on-call engineer wants (wake a human or not, how urgently), not what the rules happen to
do: a few cases are known misses of the rules and stay in the set (their ids start with `hard-`).
Edit the scenarios here, re-run, and commit both files.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pagerpatch.settings import IngestSettings
from services.ingest.providers import PROVIDERS, Context, Delivery, WebhookRequest

# The dataset ships inside the package (read by `pagerpatch eval triage` through importlib.resources).
OUT = Path(__file__).resolve().parents[2] / "services" / "triage" / "data" / "triage_golden.jsonl"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"  # real payloads (SOURCES.md there)

CATALOG = {
    "checkout": {"tier": 0, "team": "payments", "owners": ["ana"], "repo": "shop"},
    "payments": {"tier": 1, "team": "payments"},
    "search": {"tier": 2, "team": "discovery"},
    "reports": {"tier": 3, "team": "finance"},
    "orders-db": {"tier": 1, "team": "platform"},
    "ledger-api": {"tier": 1, "team": "finance"},
}

PY_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/{pkg}/api.py", line 41, in {entry}\n'
    "    return handle(request)\n"
    '  File "/srv/app/{pkg}/{module}.py", line 88, in {func}\n'
    "    value = lookup(key)\n"
    '  File "/srv/app/{pkg}/{module}.py", line 120, in lookup\n'
    "    return TABLE[key]\n"
    "{exc}: {msg}\n"
)
JS_TRACE = (
    "TypeError: Cannot read properties of undefined (reading '{prop}')\n"
    "    at {func} (/app/src/{module}.js:{line}:17)\n"
    "    at Router.handle (/app/src/router.js:55:9)\n"
    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n"
)
GO_TRACE = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4b8f2e]\n\n"
    "goroutine {g} [running]:\n"
    "main.(*Server).{func}(0xc000112000, 0x0)\n"
    "\t/src/server/{module}.go:{line} +0x2e\n"
    "main.main()\n"
    "\t/src/server/main.go:30 +0x85\n"
)


def py_trace(pkg: str, module: str, func: str, exc: str = "KeyError", msg: str = "'x'", entry: str = "handle") -> str:
    return PY_TRACE.format(pkg=pkg, module=module, func=func, exc=exc, msg=msg, entry=entry)


# ---------------------------------------------------------------- provider shapes (as ingest normalizes them)


def generic(service: str, title: str, *, severity: str | None = None, trace: str | None = None,
            status: str = "firing", resource: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    kind = "error" if trace else extra.pop("kind", "metric")
    a: dict[str, Any] = {"source": "generic", "service": service, "title": title, "status": status,
                         "fingerprint_inputs": {"title": title}, "kind": kind}  # fmt: skip
    if severity:
        a["severity_hint"] = severity
    if trace:
        a["stack_trace"] = trace
    if resource:
        a["resource"] = resource
    a.update(extra)
    return a


def alertmanager(alertname: str, service: str, summary: str, *, severity: str | None = "critical",
                 instance: str | None = None, status: str = "firing", kind: str = "metric",
                 source: str = "alertmanager", **labels: str) -> dict[str, Any]:  # fmt: skip
    lab = {"alertname": alertname, "service": service, **({"severity": severity} if severity else {}), **labels}
    if instance:
        lab["instance"] = instance
    a: dict[str, Any] = {
        "source": source, "service": service, "title": summary, "status": status, "labels": lab,
        "fingerprint_inputs": {k: v for k, v in lab.items()}, "kind": kind,
    }  # fmt: skip
    if severity:
        a["severity_hint"] = severity
    if instance:
        a["resource"] = instance
    return a


def cloudwatch(alarm: str, service: str, *, state: str = "ALARM", metric: str = "Latency",
               namespace: str = "AWS/ApplicationELB", kind: str = "latency", resource: str | None = None,
               account: str = "123456789012", region: str = "us-east-1") -> dict[str, Any]:  # fmt: skip
    a: dict[str, Any] = {
        "source": "sns", "service": service, "title": alarm, "status": "resolved" if state == "OK" else "firing",
        "labels": {"region": region, "account": account, "state": state, "namespace": namespace, "metric": metric},
        "fingerprint_inputs": {"alarm": f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}", "account": account,
                               "region": region},
        "kind": kind,
        "description": f"Threshold Crossed: 1 datapoint for {metric} was {state}",
    }  # fmt: skip
    if state == "INSUFFICIENT_DATA":
        a["noise_hint"] = "insufficient_data"
    if resource:
        a["resource"] = resource
    return a


def sentry(issue: str, project: str, title: str, trace: str, *, level: str = "error", culprit: str | None = None,
           status: str = "firing") -> dict[str, Any]:  # fmt: skip
    return {
        "source": "sentry", "service": project, "title": title, "status": status, "severity_hint": level,
        "stack_trace": trace, "resource": culprit, "kind": "error",
        "fingerprint_inputs": {"issue": issue, "project": project}, "labels": {"level": level, "project": project},
    }  # fmt: skip


def pagerduty(incident: str, key: str, title: str, service: str, *, priority: str | None = "P1",
              status: str = "firing", kind: str = "metric") -> dict[str, Any]:  # fmt: skip
    a: dict[str, Any] = {
        "source": "pagerduty", "service": service, "title": title, "status": status, "kind": kind,
        "resource": f"https://acme.pagerduty.com/incidents/{incident}",
        "fingerprint_inputs": {"incident": incident, "incident_key": key},
    }  # fmt: skip
    if priority:
        a["severity_hint"] = priority
    return a


def grafana(rule: str, service: str, summary: str, *, severity: str | None = "critical", instance: str | None = None,
            status: str = "firing", kind: str = "metric") -> dict[str, Any]:  # fmt: skip
    return alertmanager(rule, service, summary, severity=severity, instance=instance, status=status, kind=kind,
                        source="grafana", grafana_folder="production")  # fmt: skip


def github_ci(repo: str, workflow: str, job: str, branch: str = "main") -> dict[str, Any]:
    return {
        "source": "github", "service": repo.split("/")[-1], "resource": repo, "kind": "ci_failure",
        "title": f"CI failure: {workflow} / {job} (failure) on {repo}@{branch}",
        "fingerprint_inputs": {"repository": repo, "workflow": workflow, "job": job, "branch": branch},
        "labels": {"branch": branch, "job": job, "workflow": workflow},
    }  # fmt: skip


# ---------------------------------------------------------------- cases

CASES: list[dict[str, Any]] = []


def step(
    t: float, alert: dict[str, Any], cls: str | None = None, sev: str | None = None, **more: Any
) -> dict[str, Any]:
    s: dict[str, Any] = {"t": t, "alert": alert, **more}
    if cls:
        s["expect"] = {"class": cls, **({"severity": sev} if sev else {})}
    return s


def case(cid: str, description: str, tags: list[str], steps: list[dict[str, Any]], start: str | None = None,
         **config: Any) -> None:
    cfg: dict[str, Any] = {"service_catalog": CATALOG}
    if config:
        cfg["triage"] = config
    c = {"id": cid, "description": description, "tags": tags, "config": cfg, "alerts": steps}
    if start:
        c["start"] = start
    CASES.append(c)


def singles() -> None:
    """One alert each, across providers, tiers and kinds: the severity matrix."""
    rows = [
        ("gen-trace-checkout", generic("checkout", "KeyError in checkout: POST /checkout 500", severity="critical",
                                       trace=py_trace("shop", "pricing", "quote")), "P0", ["generic", "tier0"]),
        ("gen-trace-search", generic("search", "TypeError in search results", severity="error",
                                     trace=JS_TRACE.format(prop="hits", func="render", module="results", line=12)),
         "P2", ["generic"]),
        ("gen-trace-reports-nosev", generic("reports", "panic in report builder",
                                            trace=GO_TRACE.format(g=7, func="Build", module="build", line=71)),
         "P3", ["generic", "tier3"]),
        ("gen-warning-payments", generic("payments", "Refund queue backlog growing", severity="warning",
                                         kind="saturation"), "P3", ["generic"]),
        ("sentry-error-payments", sentry("4501", "payments", "ValueError: invalid amount",
                                         py_trace("pay", "amounts", "parse", "ValueError", "'-0'")), "P2", ["sentry"]),
        ("sentry-fatal-ledger", sentry("4502", "ledger-api", "ZeroDivisionError: division by zero",
                                       py_trace("ledger", "report", "average", "ZeroDivisionError", "division by zero"),
                                       level="fatal"), "P0", ["sentry"]),
        ("sentry-warning-search", sentry("4503", "search", "DeprecationWarning: old client",
                                         py_trace("search", "client", "connect", "DeprecationWarning", "old"),
                                         level="warning"), "P3", ["sentry"]),
        ("sentry-error-checkout", sentry("4504", "checkout", "KeyError: 'SUMMER24'",
                                         py_trace("shop", "coupons", "find")), "P1", ["sentry", "tier0"]),
        ("am-critical-search", alertmanager("SearchHigh5xx", "search", "search 5xx rate above 5%",
                                            kind="availability"), "P1", ["alertmanager"]),
        ("am-warning-search", alertmanager("SearchSlowQueries", "search", "search p99 latency above 800ms",
                                           severity="warning", kind="latency"), "P3", ["alertmanager"]),
        ("am-critical-checkout", alertmanager("CheckoutDown", "checkout", "checkout endpoint down",
                                              kind="availability"), "P0", ["alertmanager", "tier0"]),
        ("am-page-reports", alertmanager("ReportsJobFailed", "reports", "nightly report job failed",
                                         severity="page", kind="error"), "P2", ["alertmanager", "tier3"]),
        ("am-nosev-payments", alertmanager("PaymentsQueueDepth", "payments", "payments queue depth high",
                                           severity=None, kind="saturation"), "P3", ["alertmanager"]),
        ("cw-latency-search", cloudwatch("search-alb-p99-latency-high", "search"), "P2", ["cloudwatch"]),
        ("cw-5xx-checkout", cloudwatch("checkout-alb-5xx-high", "checkout", metric="HTTPCode_Target_5XX_Count",
                                       kind="availability"), "P0", ["cloudwatch", "tier0"]),
        ("cw-cpu-ordersdb", cloudwatch("orders-db-cpu-high", "orders-db", metric="CPUUtilization",
                                       namespace="AWS/RDS", kind="saturation", resource="orders-db-1"),
         "P3", ["cloudwatch"]),
        ("cw-latency-reports", cloudwatch("reports-api-latency", "reports"), "P3", ["cloudwatch", "tier3"]),
        ("cw-health-payments", cloudwatch("payments-unhealthy-hosts", "payments", metric="UnHealthyHostCount",
                                          kind="availability"), "P1", ["cloudwatch"]),
        ("pd-p1-payments", pagerduty("PX1AB2C", "payments/charge-failures", "Charge failures above 2%",
                                     "payments", kind="error"), "P1", ["pagerduty"]),
        ("pd-p3-search", pagerduty("PX1AB2D", "search/index-lag", "Search index lag above 10 minutes", "search",
                                   priority="P3"), "P3", ["pagerduty"]),
        ("pd-high-checkout", pagerduty("PX1AB2E", "checkout/latency", "Checkout latency SLO burn",
                                       "checkout", priority="high", kind="latency"), "P0", ["pagerduty", "tier0"]),
        ("pd-nopriority-orders", pagerduty("PX1AB2F", "orders-db/replication", "Replication broken on orders-db",
                                           "orders-db", priority=None, kind="error"), "P2", ["pagerduty"]),
        ("grafana-critical-search", grafana("SearchErrorBudget", "search", "search error budget burn 14x",
                                            kind="error"), "P1", ["grafana"]),
        ("grafana-warning-payments", grafana("PaymentsDiskFilling", "payments", "disk 85% full on payments-db",
                                             severity="warning", kind="saturation"), "P3", ["grafana"]),
        ("gh-ci-search", github_ci("acme/search", "CI", "test (ubuntu-latest)"), "P3", ["github"]),
        ("gh-ci-checkout", github_ci("acme/checkout", "CI", "integration"), "P2", ["github", "tier0"]),
        ("gh-ci-reports", github_ci("acme/reports", "nightly", "e2e"), "P3", ["github", "tier3"]),
        ("gen-critical-nokind", generic("search", "Search cluster red", severity="critical"), "P1", ["generic"]),
        ("gen-sev0-ledger", generic("ledger-api", "Ledger totals do not balance", severity="sev0"), "P0",
         ["generic"]),
        ("gen-go-orders", generic("orders-db", "orders writer panic", severity="error",
                                  trace=GO_TRACE.format(g=19, func="Write", module="writer", line=201)),
         "P2", ["generic"]),
    ]
    for cid, alert, sev, tags in rows:
        case(f"single-{cid}", "one alert opens an incident with the expected severity", ["single", *tags],
             [step(0, alert, "real", sev)])


def storms() -> None:
    """The same problem many times: one incident, the rest duplicates carrying its severity."""
    tr = py_trace("shop", "pricing", "quote")
    case("storm-generic-trace-200", "200 copies of one traced error in 10 minutes", ["storm", "generic", "duplicate"],
         [step(0, generic("checkout", "KeyError in checkout for order 1001", severity="critical", trace=tr),
               "real", "P0"),
          step(3, generic("checkout", "KeyError in checkout for order {i}", severity="critical", trace=tr),
               "duplicate", "P0", repeat=199, every=3)])
    case("storm-am-replicas", "Alertmanager fires the same alert for 30 pods", ["storm", "alertmanager", "replicas"],
         [step(0, alertmanager("PodCrashLooping", "search", "pod is crash looping", severity="warning",
                               instance="search-7f9c8d6b5-x2x7q", kind="error"), "real", "P3"),
          step(2, alertmanager("PodCrashLooping", "search", "pod is crash looping", severity="warning",
                               instance="search-7f9c8d6b5-a{i}b2c", kind="error"), "duplicate", "P3",
               repeat=29, every=1)])
    case("storm-cw-repeats", "a CloudWatch alarm re-notifies every minute for an hour", ["storm", "cloudwatch"],
         [step(0, cloudwatch("payments-alb-5xx", "payments", metric="HTTPCode_Target_5XX_Count", kind="availability"),
               "real", "P1"),
          step(60, cloudwatch("payments-alb-5xx", "payments", metric="HTTPCode_Target_5XX_Count",
                              kind="availability"), "duplicate", "P1", repeat=59, every=60)])
    case("storm-sentry-events", "Sentry sends every event of one issue", ["storm", "sentry"],
         [step(0, sentry("777", "payments", "ValueError: invalid amount '{i}'",
                         py_trace("pay", "amounts", "parse", "ValueError", "'12'")), "real", "P2"),
          step(1, sentry("777", "payments", "ValueError: invalid amount '{i}'",
                         py_trace("pay", "amounts", "parse", "ValueError", "'99'")), "duplicate", "P2",
               repeat=80, every=1)])
    case("storm-pd-updates", "PagerDuty sends updates of one incident", ["storm", "pagerduty"],
         [step(0, pagerduty("PQ9X", "checkout/latency", "Checkout latency SLO burn", "checkout", kind="latency"),
               "real", "P0"),
          step(30, pagerduty("PQ9X", "checkout/latency", "Checkout latency SLO burn", "checkout", kind="latency"),
               "duplicate", "P0", repeat=5, every=30)])
    case("storm-escalation-joins", "a warning escalates to critical: same alert, same incident",
         ["storm", "alertmanager"],
         [step(0, alertmanager("OrdersDbConnections", "orders-db", "connections above 80%", severity="warning",
                               kind="saturation"), "real", "P3"),
          step(300, alertmanager("OrdersDbConnections", "orders-db", "connections above 95%", severity="critical",
                                 kind="saturation"), "duplicate")])
    case("storm-two-groups", "two problems storming at once stay two incidents", ["storm", "generic"],
         [step(0, generic("search", "Search cluster red", severity="critical"), "real", "P1"),
          step(1, generic("search", "Indexer lag 45 minutes", severity="warning"), "real", "P3"),
          step(2, generic("search", "Search cluster red", severity="critical"), "duplicate", "P1", repeat=20,
               every=2),
          step(3, generic("search", "Indexer lag {i} minutes", severity="warning"), "duplicate", "P3", repeat=20,
               every=2)])
    case("storm-grafana-instances", "Grafana rule fires for 12 instances", ["storm", "grafana", "replicas"],
         [step(0, grafana("NodeDiskFull", "reports", "disk full on ip-10-0-1-5", severity="warning",
                          instance="ip-10-0-1-5", kind="saturation"), "real", "P3"),
          step(5, grafana("NodeDiskFull", "reports", "disk full on ip-10-0-1-{i}", severity="warning",
                          instance="ip-10-0-1-{i}", kind="saturation"), "duplicate", "P3", repeat=11, every=5)])


def flapping() -> None:
    """ALARM/OK toggling: one incident; a re-fire soon after triage closed it reopens it (the toggles count on it);
    an alert toggling with no incident to go back to is noise once it changed 4 times within the window."""
    for n, (svc, alarm, kind, sev) in enumerate([
        ("search", "search-alb-p99-latency-high", "latency", "P2"),
        ("payments", "payments-unhealthy-hosts", "availability", "P1"),
        ("orders-db", "orders-db-cpu-high", "saturation", "P3"),
        ("checkout", "checkout-alb-latency", "latency", "P1"),
    ]):
        def cw(state: str, svc: str = svc, alarm: str = alarm, kind: str = kind) -> dict[str, Any]:
            return cloudwatch(alarm, svc, state=state, kind=kind)

        case(f"flap-cw-{n}", "CloudWatch alarm toggles ALARM/OK every 2 minutes", ["flapping", "cloudwatch"],
             [step(0, cw("ALARM"), "real", sev), step(120, cw("OK"), "duplicate"),
              step(240, cw("ALARM"), "duplicate", sev), step(360, cw("OK"), "duplicate"),
              step(480, cw("ALARM"), "duplicate", sev), step(600, cw("OK"), "duplicate")])
    for n, (svc, name, kind) in enumerate([("search", "SearchHigh5xx", "availability"),
                                           ("payments", "PaymentsLatency", "latency"),
                                           ("reports", "ReportsQueue", "saturation")]):
        def am(status: str, svc: str = svc, name: str = name, kind: str = kind) -> dict[str, Any]:
            return alertmanager(name, svc, f"{name} firing", severity="warning", status=status, kind=kind,
                                instance="10.0.3.7:9100")

        case(f"flap-am-{n}", "Alertmanager alert resolves and re-fires within minutes", ["flapping", "alertmanager"],
             [step(0, am("firing"), "real"), step(60, am("resolved"), "duplicate"),
              step(150, am("firing"), "duplicate"), step(200, am("resolved"), "duplicate"),
              step(260, am("firing"), "duplicate")])
    case("flap-then-calm-recurs", "after toggling stops for an hour the alert is a new incident",
         ["flapping", "cloudwatch"],
         [step(0, cloudwatch("search-alb-p99-latency-high", "search"), "real", "P2"),
          step(60, cloudwatch("search-alb-p99-latency-high", "search", state="OK"), "duplicate"),
          step(120, cloudwatch("search-alb-p99-latency-high", "search"), "duplicate"),
          step(180, cloudwatch("search-alb-p99-latency-high", "search", state="OK"), "duplicate"),
          step(4000, cloudwatch("search-alb-p99-latency-high", "search"), "real", "P2")])
    case("flap-replicas-not-flapping", "two replicas firing and resolving in turn is not flapping",
         ["flapping", "replicas", "alertmanager"],
         [step(0, alertmanager("HighErrorRate", "search", "error rate high", instance="search-7f9c8d6b5-aaaa1",
                               kind="error"), "real", "P1"),
          step(30, alertmanager("HighErrorRate", "search", "error rate high", instance="search-7f9c8d6b5-bbbb2",
                                kind="error"), "duplicate", "P1"),
          step(60, alertmanager("HighErrorRate", "search", "error rate high", instance="search-7f9c8d6b5-aaaa1",
                                kind="error", status="resolved"), "duplicate"),
          step(90, alertmanager("HighErrorRate", "search", "error rate high", instance="search-7f9c8d6b5-aaaa1",
                                kind="error"), "duplicate", "P1")])
    case("flap-grafana", "Grafana alert flaps on a threshold", ["flapping", "grafana"],
         [step(0, grafana("QueueLag", "payments", "queue lag above 1000", severity="warning", kind="saturation"),
               "real", "P3"),
          step(90, grafana("QueueLag", "payments", "queue lag above 1000", severity="warning", kind="saturation",
                           status="resolved"), "duplicate"),
          step(180, grafana("QueueLag", "payments", "queue lag above 1000", severity="warning", kind="saturation"),
               "duplicate", "P3")], flapping_window_s=900)


def spikes() -> None:
    """Short spikes that resolve before the threshold never open an incident; sustained ones do."""
    cfg = {"spike_threshold_s": 180}
    for n, (svc, alarm, kind) in enumerate([("search", "search-p99-latency", "latency"),
                                            ("payments", "payments-cpu", "saturation"),
                                            ("checkout", "checkout-latency", "latency")]):
        case(f"spike-short-{n}", "latency spike resolves after 60s, under the 180s threshold", ["spike", "cloudwatch"],
             [step(0, cloudwatch(alarm, svc, kind=kind), "noise"),
              step(60, cloudwatch(alarm, svc, kind=kind, state="OK"), "noise")], **cfg)
    case("spike-sustained", "a latency alarm re-notifying for 4 minutes opens once it passed the threshold",
         ["spike", "cloudwatch"],
         [step(0, cloudwatch("search-p99-latency", "search"), "noise"),
          step(60, cloudwatch("search-p99-latency", "search"), "noise"),
          step(120, cloudwatch("search-p99-latency", "search"), "noise"),
          step(180, cloudwatch("search-p99-latency", "search"), "real", "P2"),
          step(240, cloudwatch("search-p99-latency", "search"), "duplicate", "P2")], **cfg)
    case("spike-sustained-am", "Alertmanager repeat notifications of a saturation alert", ["spike", "alertmanager"],
         [step(0, alertmanager("DiskIO", "orders-db", "disk io saturated", severity="warning", kind="saturation"),
               "noise"),
          step(240, alertmanager("DiskIO", "orders-db", "disk io saturated", severity="warning", kind="saturation"),
               "real", "P3")], **cfg)
    case("spike-errors-not-held", "errors are not held by the spike rule (only latency/saturation)",
         ["spike", "sentry"],
         [step(0, sentry("880", "search", "KeyError: 'q'", py_trace("search", "query", "parse")), "real", "P2")],
         **cfg)
    case("spike-off-by-default", "without a threshold a latency alarm opens at once", ["spike", "cloudwatch"],
         [step(0, cloudwatch("search-p99-latency", "search"), "real", "P2"),
          step(60, cloudwatch("search-p99-latency", "search", state="OK"), "duplicate")])
    case("spike-resolve-then-sustain", "a short spike, then a sustained episode", ["spike", "cloudwatch"],
         [step(0, cloudwatch("search-p99-latency", "search"), "noise"),
          step(30, cloudwatch("search-p99-latency", "search", state="OK"), "noise"),
          step(2000, cloudwatch("search-p99-latency", "search"), "noise"),
          step(2200, cloudwatch("search-p99-latency", "search"), "real", "P2")], **cfg)


def resolutions() -> None:
    """Resolved-before-acknowledged and other resolutions."""
    for n, (alert, resolved, sev) in enumerate([
        (cloudwatch("payments-alb-5xx", "payments", metric="HTTPCode_Target_5XX_Count", kind="availability"),
         cloudwatch("payments-alb-5xx", "payments", metric="HTTPCode_Target_5XX_Count", kind="availability",
                    state="OK"), "P1"),
        (alertmanager("SearchHigh5xx", "search", "search 5xx rate above 5%", kind="availability"),
         alertmanager("SearchHigh5xx", "search", "search 5xx rate above 5%", kind="availability", status="resolved"),
         "P1"),
        (pagerduty("PRB1", "reports/lag", "Reports lag", "reports", priority="P2"),
         pagerduty("PRB1", "reports/lag", "Reports lag", "reports", priority="P2", status="resolved"), "P3"),
        (grafana("PaymentsErrors", "payments", "payments error ratio high", kind="error"),
         grafana("PaymentsErrors", "payments", "payments error ratio high", kind="error", status="resolved"), "P1"),
    ]):
        case(f"resolved-before-ack-{n}", "the alert resolves 4 minutes later, before anyone acknowledged",
             ["resolution", alert["source"]],
             [step(0, alert, "real", sev), step(240, resolved, "duplicate"), step(3600, alert, "real", sev)])
    case("resolution-orphan-am", "a resolved notification with nothing open", ["resolution", "alertmanager"],
         [step(0, alertmanager("SearchHigh5xx", "search", "search 5xx rate above 5%", kind="availability",
                               status="resolved"), "noise")])
    case("resolution-orphan-cw", "an OK transition with nothing open", ["resolution", "cloudwatch"],
         [step(0, cloudwatch("search-p99-latency", "search", state="OK"), "noise")])
    case("resolution-partial", "one of two firing instances resolves: the incident stays",
         ["resolution", "replicas", "alertmanager"],
         [step(0, alertmanager("HighErrorRate", "payments", "error rate high", instance="10.0.0.1:9100",
                               kind="error"), "real", "P1"),
          step(20, alertmanager("HighErrorRate", "payments", "error rate high", instance="10.0.0.2:9100",
                                kind="error"), "duplicate", "P1"),
          step(300, alertmanager("HighErrorRate", "payments", "error rate high", instance="10.0.0.1:9100",
                                 kind="error", status="resolved"), "duplicate"),
          step(320, alertmanager("HighErrorRate", "payments", "error rate high", instance="10.0.0.1:9100",
                                 kind="error"), "duplicate", "P1")])
    case("resolution-sentry-resolved", "Sentry marks the issue resolved", ["resolution", "sentry"],
         [step(0, sentry("901", "payments", "KeyError: 'currency'", py_trace("pay", "fx", "convert")), "real", "P2"),
          step(900, sentry("901", "payments", "KeyError: 'currency'", py_trace("pay", "fx", "convert"),
                           status="resolved"), "duplicate")])


def replicas_and_unrelated() -> None:
    """The same error from several replicas is one incident; unrelated errors in one service are several."""
    tr = py_trace("shop", "cart", "total", "TypeError", "unsupported operand type(s) for +: 'int' and 'NoneType'")
    case("replicas-generic-trace", "the same traceback from 5 pods", ["replicas", "generic"],
         [step(0, generic("checkout", "TypeError in cart total", severity="error", trace=tr,
                          resource="checkout-7f9c8d6b5-x2x7q"), "real", "P1"),
          step(4, generic("checkout", "TypeError in cart total", severity="error", trace=tr,
                          resource="checkout-7f9c8d6b5-q{i}z9k"), "duplicate", "P1", repeat=4, every=4)])
    case("replicas-sentry-and-generic", "Sentry and a log alert report the same exception", ["replicas", "sentry"],
         [step(0, sentry("612", "payments", "KeyError: 'EUR'", py_trace("pay", "fx", "rate")), "real", "P2"),
          step(30, generic("payments", "KeyError raised in fx.rate for order 88123", severity="error",
                           trace=py_trace("pay", "fx", "rate", msg="'GBP'")), "duplicate", "P2")])
    case("replicas-lines-moved", "a redeploy moves line numbers; the error is the same", ["replicas", "generic"],
         [step(0, generic("search", "IndexError in ranking", severity="error",
                          trace=py_trace("search", "rank", "score", "IndexError", "list index out of range")),
               "real", "P2"),
          step(600, generic("search", "IndexError in ranking", severity="error",
                            trace=py_trace("search", "rank", "score", "IndexError", "list index out of range")
                            .replace("line 88", "line 97")), "duplicate", "P2")])
    case("replicas-cw-per-instance", "one alarm per EC2 instance of the same auto-scaling group",
         ["replicas", "cloudwatch"],
         [step(0, cloudwatch("payments-cpu-high", "payments", kind="saturation", metric="CPUUtilization",
                             namespace="AWS/EC2", resource="i-0abc123def4567890"), "real", "P3"),
          step(30, cloudwatch("payments-cpu-high", "payments", kind="saturation", metric="CPUUtilization",
                              namespace="AWS/EC2", resource="i-0fff9990aaa111222"), "duplicate", "P3")])
    unrelated = [
        ("unrelated-two-traces", "checkout",
         generic("checkout", "KeyError in pricing", severity="error", trace=py_trace("shop", "pricing", "quote")),
         generic("checkout", "AttributeError in shipping", severity="error",
                 trace=py_trace("shop", "shipping", "rates", "AttributeError", "'NoneType' has no attribute 'zone'")),
         "P1", "P1"),
        ("unrelated-same-helper-different-exception", "payments",
         generic("payments", "KeyError in lookup", severity="error", trace=py_trace("pay", "tables", "fee")),
         generic("payments", "TimeoutError in lookup", severity="error",
                 trace=py_trace("pay", "tables", "fee", "TimeoutError", "timed out")), "P2", "P2"),
        ("unrelated-two-am-rules", "search",
         alertmanager("SearchHigh5xx", "search", "search 5xx rate above 5%", kind="availability"),
         alertmanager("SearchIndexLag", "search", "index lag above 10m", severity="warning", kind="latency"),
         "P1", "P3"),
        ("unrelated-two-alarms", "orders-db",
         cloudwatch("orders-db-cpu-high", "orders-db", kind="saturation", metric="CPUUtilization"),
         cloudwatch("orders-db-free-storage-low", "orders-db", kind="saturation", metric="FreeStorageSpace"),
         "P3", "P3"),
        ("unrelated-two-sentry-issues", "search",
         sentry("1001", "search", "KeyError: 'q'", py_trace("search", "query", "parse")),
         sentry("1002", "search", "ValueError: bad cursor", py_trace("search", "paging", "decode", "ValueError",
                                                                      "bad cursor")), "P2", "P2"),
        ("unrelated-two-ci-jobs", "search", github_ci("acme/search", "CI", "lint"),
         github_ci("acme/search", "CI", "test (ubuntu-latest)"), "P3", "P3"),
    ]
    for cid, _svc, a, b, sa, sb in unrelated:
        case(cid, "two unrelated problems in one service open two incidents", ["unrelated", a["source"]],
             [step(0, a, "real", sa), step(30, b, "real", sb), step(60, a, "duplicate", sa),
              step(90, b, "duplicate", sb)])


def maintenance() -> None:
    one_off = [{"name": "db-upgrade", "service": "orders-db", "starts_at": "2024-06-03T11:30:00Z",
                "ends_at": "2024-06-03T13:00:00Z"}]  # fmt: skip
    weekly = [{"name": "sunday-patching", "service": "search", "weekly": {"days": ["mon"], "start": "11:00",
                                                                           "end": "13:00", "timezone": "UTC"}}]
    case("maint-oneoff-inside", "alerts during the database upgrade are noise", ["maintenance", "cloudwatch"],
         [step(0, cloudwatch("orders-db-cpu-high", "orders-db", kind="saturation"), "noise"),
          step(600, cloudwatch("orders-db-replica-lag", "orders-db", kind="latency"), "noise")], maintenance=one_off)
    case("maint-oneoff-after", "the same alert after the window ends is real", ["maintenance", "cloudwatch"],
         [step(0, cloudwatch("orders-db-cpu-high", "orders-db", kind="saturation"), "noise"),
          step(3700, cloudwatch("orders-db-cpu-high", "orders-db", kind="saturation"), "real", "P3")],
         maintenance=one_off)
    case("maint-other-service", "a window for orders-db does not mute payments", ["maintenance", "alertmanager"],
         [step(0, alertmanager("PaymentsDown", "payments", "payments down", kind="availability"), "real", "P1")],
         maintenance=one_off)
    case("maint-weekly-inside", "a recurring window mutes search on Mondays 11-13 UTC", ["maintenance", "grafana"],
         [step(0, grafana("SearchErrors", "search", "search errors", kind="error"), "noise")], maintenance=weekly)
    case("maint-weekly-outside", "outside the recurring window search alerts are real", ["maintenance", "grafana"],
         [step(7300, grafana("SearchErrors", "search", "search errors", kind="error"), "real", "P1")],
         maintenance=weekly)
    case("maint-label-scoped", "a window scoped by label only mutes matching alerts", ["maintenance", "alertmanager"],
         [step(0, alertmanager("NodeDown", "search", "node down", kind="availability", instance="10.0.0.9:9100",
                               rack="r12"), "noise"),
          step(10, alertmanager("NodeDown", "search", "node down", kind="availability", instance="10.0.0.3:9100",
                                rack="r07"), "real", "P1")],
         maintenance=[{"name": "rack-r12-swap", "labels": {"rack": "r12"}, "starts_at": "2024-06-03T11:00:00Z",
                       "ends_at": "2024-06-03T14:00:00Z"}])  # fmt: skip
    case("maint-live-incident-absorbs", "an incident opened before the window keeps absorbing its alerts",
         ["maintenance", "generic", "duplicate"],
         [step(0, generic("orders-db", "orders writer panic", severity="error",
                          trace=GO_TRACE.format(g=3, func="Write", module="writer", line=9)), "real", "P2"),
          step(2000, generic("orders-db", "orders writer panic", severity="error",
                             trace=GO_TRACE.format(g=4, func="Write", module="writer", line=9)), "duplicate", "P2")],
         maintenance=[{"name": "late", "service": "orders-db", "starts_at": "2024-06-03T12:30:00Z",
                       "ends_at": "2024-06-03T13:30:00Z"}])  # fmt: skip
    case("maint-sentry-title", "a window for a title pattern", ["maintenance", "sentry"],
         [step(0, sentry("3001", "payments", "ConnectionError: db failover in progress",
                         py_trace("pay", "db", "connect", "ConnectionError", "failover")), "noise")],
         maintenance=[{"name": "failover-drill", "title": "failover", "starts_at": "2024-06-03T12:00:00Z",
                       "ends_at": "2024-06-03T12:30:00Z"}])  # fmt: skip


def known_noise_and_hints() -> None:
    patterns = [{"name": "watchdog", "title": "^(watchdog|deadmansswitch)"},
                {"name": "staging", "labels": {"env": "staging"}},
                {"name": "ci-flaky-e2e", "source": "github", "title": "nightly / e2e"}]  # fmt: skip
    case("noise-watchdog", "Alertmanager's always-firing Watchdog", ["known_noise", "alertmanager"],
         [step(0, alertmanager("Watchdog", "monitoring", "Watchdog", severity="none"), "noise")],
         known_noise=patterns)
    case("noise-staging", "staging alerts are configured as noise", ["known_noise", "alertmanager"],
         [step(0, alertmanager("HighErrorRate", "search", "error rate high", kind="error", env="staging"), "noise"),
          step(5, alertmanager("HighErrorRate", "search", "error rate high", kind="error", env="production"),
               "real", "P1")], known_noise=patterns)
    case("noise-flaky-ci", "a known-flaky CI job", ["known_noise", "github"],
         [step(0, github_ci("acme/reports", "nightly", "e2e"), "noise"),
          step(10, github_ci("acme/reports", "CI", "unit"), "real", "P3")], known_noise=patterns)
    case("hard-watchdog-without-pattern", "without a pattern the Watchdog is undecided and opens by default",
         ["hard", "known_noise", "alertmanager", "undecided"],
         [step(0, alertmanager("Watchdog", "monitoring", "Watchdog", severity="none"), "noise")])
    for n, alarm in enumerate(["payments-alb-5xx", "orders-db-cpu-high", "search-p99-latency"]):
        case(f"insufficient-data-{n}", "INSUFFICIENT_DATA is noise; a later ALARM is real",
             ["insufficient_data", "cloudwatch"],
             [step(0, cloudwatch(alarm, alarm.split("-")[0] if n != 1 else "orders-db", state="INSUFFICIENT_DATA"),
                   "noise"),
              step(300, cloudwatch(alarm, alarm.split("-")[0] if n != 1 else "orders-db", state="OK"), "noise")])
    case("insufficient-then-alarm", "INSUFFICIENT_DATA, then a real ALARM", ["insufficient_data", "cloudwatch"],
         [step(0, cloudwatch("payments-alb-5xx", "payments", state="INSUFFICIENT_DATA", kind="availability"),
               "noise"),
          step(600, cloudwatch("payments-alb-5xx", "payments", kind="availability"), "real", "P1")])
    case("insufficient-during-incident", "INSUFFICIENT_DATA while the alarm's incident is live is absorbed",
         ["insufficient_data", "cloudwatch", "duplicate"],
         [step(0, cloudwatch("payments-alb-5xx", "payments", kind="availability"), "real", "P1"),
          step(600, cloudwatch("payments-alb-5xx", "payments", state="INSUFFICIENT_DATA", kind="availability"),
               "duplicate", "P1")])


def open_after() -> None:
    rule = [{"name": "search-5xx-3-in-5m", "service": "search", "count": 3, "within_s": 300}]
    case("open-after-third", "the third matching alert within 5 minutes opens", ["open_after", "alertmanager"],
         [step(0, alertmanager("Search5xx", "search", "5xx on search", kind="availability", instance="10.0.0.1:80"),
               "noise"),
          step(60, alertmanager("Search5xx", "search", "5xx on search", kind="availability", instance="10.0.0.2:80"),
               "noise"),
          step(120, alertmanager("Search5xx", "search", "5xx on search", kind="availability",
                                 instance="10.0.0.3:80"), "real", "P0"),
          step(180, alertmanager("Search5xx", "search", "5xx on search", kind="availability",
                                 instance="10.0.0.4:80"), "duplicate", "P0")], open_after=rule)
    case("open-after-spread-out", "three alerts over 15 minutes never reach 3 within 5", ["open_after", "generic"],
         [step(0, generic("search", "search 5xx burst", severity="error"), "noise"),
          step(400, generic("search", "search 5xx burst", severity="error"), "noise"),
          step(800, generic("search", "search 5xx burst", severity="error"), "noise")], open_after=rule)
    case("open-after-other-service", "the rule is for search only", ["open_after", "generic"],
         [step(0, generic("payments", "payments 5xx burst", severity="error"), "real", "P2")], open_after=rule)
    case("open-after-blast-radius", "four hosts within the window: the incident opens one level higher",
         ["open_after", "blast_radius", "grafana"],
         [step(0, grafana("NodeDown", "search", "node down", severity="warning", instance="ip-10-0-0-1",
                          kind="availability"), "noise"),
          step(30, grafana("NodeDown", "search", "node down", severity="warning", instance="ip-10-0-0-2",
                           kind="availability"), "noise"),
          step(60, grafana("NodeDown", "search", "node down", severity="warning", instance="ip-10-0-0-3",
                           kind="availability"), "real", "P2")], open_after=rule)
    case("open-after-title-rule", "a rule for one alert by title", ["open_after", "sentry"],
         [step(0, sentry("51", "payments", "ConnectionResetError: peer reset",
                         py_trace("pay", "http", "post", "ConnectionResetError", "reset")), "noise"),
          step(20, sentry("51", "payments", "ConnectionResetError: peer reset",
                          py_trace("pay", "http", "post", "ConnectionResetError", "reset")), "real", "P2")],
         open_after=[{"name": "resets-twice", "title": "ConnectionResetError", "count": 2, "within_s": 60}])
    case("open-after-single-not-matching", "alerts the rule does not match open at once",
         ["open_after", "sentry"],
         [step(0, sentry("52", "payments", "KeyError: 'id'", py_trace("pay", "http", "parse")), "real", "P2")],
         open_after=[{"name": "resets-twice", "title": "ConnectionResetError", "count": 2, "within_s": 60}])
    case("blast-radius-held-spike", "a latency alarm on 3 hosts, held then sustained, opens raised",
         ["blast_radius", "spike", "alertmanager"],
         [step(0, alertmanager("Slow", "payments", "slow responses", severity="warning", kind="latency",
                               instance="10.0.0.1:80"), "noise"),
          step(10, alertmanager("Slow", "payments", "slow responses", severity="warning", kind="latency",
                                instance="10.0.0.2:80"), "noise"),
          step(20, alertmanager("Slow", "payments", "slow responses", severity="warning", kind="latency",
                                instance="10.0.0.3:80"), "noise"),
          step(200, alertmanager("Slow", "payments", "slow responses", severity="warning", kind="latency",
                                 instance="10.0.0.1:80"), "real", "P2")], spike_threshold_s=180)


def undecided_and_windows() -> None:
    case("undecided-default-open", "nothing telling about the alert: the documented default opens",
         ["undecided", "generic"],
         [step(0, generic("reports", "Report totals look odd"), "real", "P3")])
    case("undecided-suppress", "with triage.undecided=suppress the same alert is noise", ["undecided", "generic"],
         [step(0, generic("reports", "Report totals look odd"), "noise")], undecided="suppress")
    case("undecided-cw-metric", "a CloudWatch alarm on a custom metric with no severity opens by default",
         ["undecided", "cloudwatch"],
         [step(0, cloudwatch("orders-processed-low", "payments", kind="metric", metric="OrdersProcessed",
                             namespace="Shop"), "real", "P3")])
    case("undecided-suppress-keeps-real-ones", "undecided=suppress does not touch alerts that say they are real",
         ["undecided", "sentry"],
         [step(0, sentry("61", "search", "KeyError: 'x'", py_trace("search", "facets", "build")), "real", "P2")],
         undecided="suppress")
    case("window-stale-incident", "the same alert 8 hours later, incident still open: a new incident",
         ["dedup_window", "generic"],
         [step(0, generic("ledger-api", "ledger export failed", severity="error"), "real", "P2"),
          step(28800, generic("ledger-api", "ledger export failed", severity="error"), "real", "P2")])
    case("window-within", "the same alert 5 hours later is still a duplicate", ["dedup_window", "generic"],
         [step(0, generic("ledger-api", "ledger export failed", severity="error"), "real", "P2"),
          step(18000, generic("ledger-api", "ledger export failed", severity="error"), "duplicate", "P2")])
    case("window-short-config", "a 10-minute dedup window", ["dedup_window", "alertmanager"],
         [step(0, alertmanager("Backlog", "reports", "backlog", severity="warning", kind="saturation"), "real", "P3"),
          step(300, alertmanager("Backlog", "reports", "backlog", severity="warning", kind="saturation"),
               "duplicate", "P3"),
          step(1300, alertmanager("Backlog", "reports", "backlog", severity="warning", kind="saturation"),
               "real", "P3")], dedup_window_s=600)
    case("explicit-fingerprint", "a sender-given fingerprint groups different titles", ["generic", "duplicate"],
         [step(0, generic("payments", "charge failed for card 4242", severity="error", fingerprint="charge-fail"),
               "real", "P2"),
          step(10, generic("payments", "refund failed", severity="error", fingerprint="charge-fail"),
               "duplicate", "P2")])


def hard() -> None:
    """Cases an on-call engineer labels differently from what the rules can know (kept as honest misses)."""
    case("hard-bot-404s", "a scanner probing /wp-admin raises errors: noise to a human, no rule knows",
         ["hard", "sentry"],
         [step(0, sentry("7001", "checkout", "NotFound: /wp-admin/setup.php",
                         py_trace("shop", "routes", "dispatch", "NotFound", "/wp-admin/setup.php")), "noise")])
    case("hard-disk-on-build-agent", "disk 85% on a CI build agent: not worth an incident", ["hard", "grafana"],
         [step(0, grafana("DiskFilling", "ci-runners", "disk 85% on build-agent-7", severity="warning",
                          kind="saturation"), "noise")])
    case("hard-same-frames-different-bugs", "two different bugs surfacing in one generic helper",
         ["hard", "generic", "unrelated"],
         [step(0, generic("search", "KeyError in facet lookup", severity="error",
                          trace=py_trace("search", "util", "get", msg="'brand'")), "real", "P2"),
          step(60, generic("search", "KeyError in price lookup", severity="error",
                           trace=py_trace("search", "util", "get", msg="'price'")), "real", "P2")])
    case("hard-low-priority-p0", "a low-priority PagerDuty incident that is in fact a full outage",
         ["hard", "pagerduty"],
         [step(0, pagerduty("PZZ1", "search/all", "search returns no results for every query", "search",
                            priority="low"), "real", "P0")])


def more() -> None:
    """More providers and shapes."""
    java = (
        "java.lang.NullPointerException: Cannot invoke \"Order.total()\" because \"order\" is null\n"
        "\tat com.acme.orders.Pricing.quote(Pricing.java:88)\n"
        "\tat com.acme.orders.Api.checkout(Api.java:41)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:833)\n"
    )
    rows = [
        ("gen-java-payments", generic("payments", "NullPointerException in Pricing.quote", severity="error",
                                      trace=java), "P2", ["generic"]),
        ("sentry-fatal-reports", sentry("4601", "reports", "MemoryError", py_trace("rep", "export", "dump",
                                                                                  "MemoryError", ""), level="fatal"),
         "P1", ["sentry", "tier3"]),
        ("am-info-search", alertmanager("SearchCacheMissRatio", "search", "cache miss ratio above 40%",
                                        severity="info", kind="metric"), "P3", ["alertmanager"]),
        ("cw-availability-reports", cloudwatch("reports-unhealthy", "reports", metric="HealthyHostCount",
                                               kind="availability"), "P2", ["cloudwatch", "tier3"]),
        ("pd-p2-ledger", pagerduty("PL22", "ledger/export", "Ledger export delayed", "ledger-api", priority="P2"),
         "P2", ["pagerduty"]),
        ("grafana-high-ordersdb", grafana("ReplicaLag", "orders-db", "replica lag above 60s", severity="high",
                                          kind="latency"), "P1", ["grafana"]),
    ]
    for cid, alert, sev, tags in rows:
        case(f"single-{cid}", "one alert opens an incident with the expected severity", ["single", *tags],
             [step(0, alert, "real", sev)])
    for n, (alert, resolved) in enumerate([
        (alertmanager("Search5xx", "search", "5xx on search", kind="availability"),
         alertmanager("Search5xx", "search", "5xx on search", kind="availability", status="resolved")),
        (cloudwatch("ledger-latency", "ledger-api"), cloudwatch("ledger-latency", "ledger-api", state="OK")),
        (grafana("PaymentsErrors", "payments", "errors", kind="error"),
         grafana("PaymentsErrors", "payments", "errors", kind="error", status="resolved")),
    ]):
        case(f"storm-then-resolve-{n}", "a storm of re-notifications, then the resolution closes the incident",
             ["storm", "resolution", alert["source"]],
             [step(0, alert, "real"), step(30, alert, "duplicate", repeat=40, every=30),
              step(1300, resolved, "duplicate")])
    wrap = [{"name": "night-batch", "service": "reports",
             "weekly": {"days": ["sun"], "start": "23:00", "end": "02:00", "timezone": "UTC"}}]  # fmt: skip
    case("maint-weekly-wraps-midnight", "a Sunday 23:00-02:00 window still mutes at 01:00 on Monday",
         ["maintenance", "alertmanager"],
         [step(0, alertmanager("ReportsBatchSlow", "reports", "batch slow", severity="warning", kind="latency"),
               "noise"),
          step(3600, alertmanager("ReportsBatchSlow", "reports", "batch slow", severity="warning", kind="latency"),
               "real", "P3")], start="2024-06-03T01:00:00Z", maintenance=wrap)
    case("maint-timezone", "a window in Europe/Berlin local time", ["maintenance", "sentry"],
         [step(0, sentry("3101", "search", "ConnectionError: reindex", py_trace("search", "es", "bulk",
                                                                               "ConnectionError", "reset")), "noise")],
         maintenance=[{"name": "reindex", "service": "search",
                       "weekly": {"days": ["mon"], "start": "13:30", "end": "14:30", "timezone": "Europe/Berlin"}}])
    case("maint-ended-before", "a window that ended yesterday mutes nothing", ["maintenance", "cloudwatch"],
         [step(0, cloudwatch("orders-db-cpu-high", "orders-db", kind="saturation"), "real", "P3")],
         maintenance=[{"name": "yesterday", "service": "orders-db", "starts_at": "2024-06-02T10:00:00Z",
                       "ends_at": "2024-06-02T12:00:00Z"}])  # fmt: skip
    dev = [{"name": "dev-envs", "labels": {"env": "dev*"}}]
    case("noise-dev-glob", "dev, dev2 and development environments are noise", ["known_noise", "alertmanager"],
         [step(0, alertmanager("HighErrorRate", "payments", "errors", kind="error", env="dev"), "noise"),
          step(5, alertmanager("HighErrorRate", "payments", "errors", kind="error", env="dev2"), "noise"),
          step(9, alertmanager("HighErrorRate", "payments", "errors", kind="error", env="prod"), "real", "P1")],
         known_noise=dev)
    case("noise-pattern-by-service", "a noisy sandbox service muted wholesale", ["known_noise", "generic"],
         [step(0, generic("sandbox-api", "KeyError in demo", severity="critical",
                          trace=py_trace("sandbox", "demo", "run")), "noise")],
         known_noise=[{"name": "sandbox", "service": "sandbox-*"}])
    case("open-after-label-rule", "a rule scoped by label: only canary errors need two in a minute",
         ["open_after", "alertmanager"],
         [step(0, alertmanager("Errors", "checkout", "errors", kind="error", track="canary"), "noise"),
          step(30, alertmanager("Errors", "checkout", "errors", kind="error", track="canary"), "real", "P0"),
          step(40, alertmanager("Errors", "checkout", "errors", kind="error", track="stable"), "real", "P0")],
         open_after=[{"name": "canary", "labels": {"track": "canary"}, "count": 2, "within_s": 60}])
    case("open-after-then-resolved", "held alerts that resolve never open", ["open_after", "grafana"],
         [step(0, grafana("Slow", "search", "slow", severity="warning", kind="latency"), "noise"),
          step(60, grafana("Slow", "search", "slow", severity="warning", kind="latency", status="resolved"),
               "noise")], open_after=[{"name": "slow", "service": "search", "count": 3, "within_s": 300}])



# ---------------------------------------------------------------- real provider shapes, through ingest's normalizers
#
# The cases below are built as the providers send them (Alertmanager v4 group notifications with kube-prometheus,
# kube-state-metrics, cAdvisor and node-exporter label sets and awesome-prometheus-alerts rule names, summaries and
# descriptions; Grafana's webhook; SNS-wrapped CloudWatch alarms; PagerDuty v3; Sentry's webhooks) and turned into
# `alert.received` payloads by ingest's own provider modules, so the set measures triage on what it really receives.

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)  # the eval's default start
KSM = {"job": "kube-state-metrics", "instance": "10.244.3.17:8080", "endpoint": "http",
       "service": "kube-prometheus-stack-kube-state-metrics", "prometheus": "monitoring/kube-prometheus-stack"}


def iso(t: float) -> str:
    return (T0 + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")


def normalized(provider: str, body: dict[str, Any], t: float = 0, **headers: str) -> list[dict[str, Any]]:
    """The provider's body as ingest turns it into alert payloads (raw copy and delivery id left out)."""
    req = WebhookRequest(headers={k.replace("_", "-"): v for k, v in headers.items()},
                         body=json.dumps(body).encode(), content_type="application/json")  # fmt: skip
    out = PROVIDERS[provider].normalize(req, Context(now=T0 + timedelta(seconds=t), settings=IngestSettings()))
    assert isinstance(out, Delivery) and out.events, (provider, out)
    return [e.payload.model_dump(mode="json", exclude={"raw", "delivery_id"}, exclude_defaults=True)
            for e in out.events]  # fmt: skip


def am_entry(labels: dict[str, str], summary: str, description: str, starts: float,
             ends: float | None = None, runbook: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One alert of an Alertmanager notification (firing unless it has ended)."""
    fp = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    annotations = {"summary": summary, "description": description, **({"runbook_url": runbook} if runbook else {})}
    return {"status": "resolved" if ends is not None else "firing", "labels": labels, "annotations": annotations,
            "startsAt": iso(starts), "endsAt": iso(ends) if ends is not None else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up", "fingerprint": fp}  # fmt: skip


def am_notify(entries: list[dict[str, Any]], t: float, group: tuple[str, ...] = ("alertname", "namespace"),
              provider: str = "alertmanager") -> list[dict[str, Any]]:  # fmt: skip
    """A v4 group notification of `entries`, as alert payloads."""
    first = entries[0]["labels"]
    common_labels = {k: v for k, v in first.items() if all(e["labels"].get(k) == v for e in entries)}
    body = {"version": "4", "groupKey": "{}:{" + ",".join(f'{k}="{first.get(k, "")}"' for k in group) + "}",
            "truncatedAlerts": 0, "receiver": "pagerpatch",
            "status": "firing" if any(e["status"] == "firing" for e in entries) else "resolved",
            "groupLabels": {k: first[k] for k in group if k in first}, "commonLabels": common_labels,
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": entries}  # fmt: skip
    return normalized(provider, body, t)


def sns_alarm(name: str, state: str, t: float, metric: str = "CPUUtilization", namespace: str = "AWS/EC2",
              dims: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """A CloudWatch alarm state change as SNS delivers it over HTTPS."""
    alarm = {"AlarmName": name, "AlarmDescription": f"{metric} alarm", "AWSAccountId": "123456789012",
             "NewStateValue": state, "NewStateReason": f"Threshold Crossed: 1 datapoint was {state}",
             "StateChangeTime": iso(t).replace("Z", "+0000"), "Region": "US East (N. Virginia)",
             "AlarmArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}", "OldStateValue": "OK",
             "Trigger": {"MetricName": metric, "Namespace": namespace, "Statistic": "AVERAGE", "Period": 60,
                         "Dimensions": [{"name": k, "value": v} for k, v in (dims or {}).items()],
                         "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 80.0}}
    msg = {"Type": "Notification", "MessageId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}{state}{t}")),
           "TopicArn": "arn:aws:sns:us-east-1:123456789012:cloudwatch-alarms", "Subject": f'{state}: "{name}"',
           "Message": json.dumps(alarm), "Timestamp": iso(t), "SignatureVersion": "1", "Signature": "EXAMPLE",
           "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
           "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}  # fmt: skip
    [payload] = normalized("sns", msg, t)
    return payload


def pd_event(event_type: str, priority: str | None, t: float, incident: str = "Q2KJ4XT7",
             title: str = "Checkout API error rate above 5%") -> dict[str, Any]:  # fmt: skip
    """A PagerDuty v3 webhook (the shape of PagerDuty's documented incident.priority_updated)."""
    data = json.loads((FIXTURES / "pagerduty_incident_priority_updated.json").read_text())
    event = data["event"]
    event.update(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{incident}{event_type}{t}")), event_type=event_type,
                 occurred_at=iso(t))  # fmt: skip
    event["data"].update(id=incident, title=title, html_url=f"https://acme.pagerduty.com/incidents/{incident}",
                         incident_key=f"checkout-{incident}".lower())  # fmt: skip
    event["data"]["service"]["summary"] = "checkout"
    event["data"]["priority"] = {**event["data"]["priority"], "summary": priority} if priority else None
    [payload] = normalized("pagerduty", data, t)
    return payload


def sentry_event(issue: str, project: str, platform: str, exceptions: list[dict[str, Any]], t: float,
                 title: str, culprit: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Sentry's `event_alert` webhook for one event of `issue` (exceptions oldest first, as Sentry sends them)."""
    event = {"title": title, "culprit": culprit or title, "level": "error", "platform": platform, "issue_id": issue,
             "datetime": iso(t), "url": f"https://sentry.io/api/0/projects/acme/{project}/events/{issue}{int(t)}/",
             "web_url": f"https://sentry.io/organizations/acme/issues/{issue}/", "tags": [["environment", "prod"]],
             "exception": {"values": exceptions}}  # fmt: skip
    body = {"action": "triggered", "data": {"triggered_rule": f"{project} errors", "event": event}}
    [payload] = normalized("sentry", body, t, sentry_hook_resource="event_alert")
    return payload


def sentry_issue(issue: str, project: str, title: str, culprit: str, action: str, t: float) -> dict[str, Any]:
    """Sentry's `issue` webhook (the shape of Sentry's documented issue.created)."""
    data = json.loads((FIXTURES / "sentry_issue_created.json").read_text())
    data["action"] = action
    data["data"]["issue"].update(id=issue, title=title, culprit=culprit, level="error", lastSeen=iso(t),
                                 project={"id": "1", "name": project, "slug": project, "platform": "python"})
    [payload] = normalized("sentry", data, t, sentry_hook_resource="issue")
    return payload


def log_alert(service: str, title: str, trace: str, t: float) -> dict[str, Any]:
    """A log-based alert through the generic webhook, carrying the logged stack trace."""
    body = {"title": title, "service": service, "severity": "error", "stack_trace": trace, "occurred_at": iso(t)}
    [payload] = normalized("generic", body, t)
    return payload


def frames(*fs: tuple[str, str, int], module: bool = False) -> dict[str, Any]:
    """A Sentry stack trace, outermost first (file, function, line; Java: module.Class, method, line)."""
    if module:
        return {"frames": [{"module": f, "function": fn, "filename": f.rsplit(".", 1)[-1] + ".java", "lineno": ln}
                           for f, fn, ln in fs]}  # fmt: skip
    return {"frames": [{"abs_path": f, "filename": f, "function": fn, "lineno": ln} for f, fn, ln in fs]}


def steps(
    t: float, payloads: list[dict[str, Any]], cls: str | list[str], sev: str | None = None
) -> list[dict[str, Any]]:
    """One step per payload, all at `t`; `cls` for each (a list) or for all."""
    classes = cls if isinstance(cls, list) else [cls] * len(payloads)
    return [step(t, p, c, sev) for p, c in zip(payloads, classes, strict=True)]


def k8s(alertname: str, ns: str, severity: str, **labels: str) -> dict[str, str]:
    """kube-state-metrics labels as kube-prometheus scrapes them (`instance` is the exporter, not the subject)."""
    return {"alertname": alertname, **KSM, "namespace": ns, **labels, "severity": severity}


def oom_entry(pod: str, starts: float, ends: float | None = None) -> dict[str, Any]:
    labels = k8s("KubernetesContainerOomKiller", "shop", "warning", pod=pod, container="api",
                 uid=str(uuid.uuid5(uuid.NAMESPACE_DNS, pod)))  # fmt: skip
    return am_entry(labels, f"Kubernetes Container oom killer (shop/{pod}:api)",
                    f"Container api in pod shop/{pod} has been OOMKilled 1 times in the last 10 minutes.\n"
                    f"  VALUE = 1\n  LABELS = map[container:api namespace:shop pod:{pod}]", starts, ends)  # fmt: skip


def crashloop_entry(pod: str, starts: float, ends: float | None = None, ns: str = "payments",
                    **extra: str) -> dict[str, Any]:  # fmt: skip
    labels = k8s("KubePodCrashLooping", ns, "warning", pod=pod, container="worker", reason="CrashLoopBackOff",
                 uid=str(uuid.uuid5(uuid.NAMESPACE_DNS, pod)), **extra)  # fmt: skip
    return am_entry(labels, "Pod is crash looping.",
                    f'Pod {ns}/{pod} (worker) is in waiting state (reason: "CrashLoopBackOff").', starts, ends,
                    "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping")  # fmt: skip


def host_entry(alertname: str, summary: str, instance: str, starts: float, ends: float | None = None,
               **labels: str) -> dict[str, Any]:  # fmt: skip
    all_labels = {"alertname": alertname, "instance": instance, "job": "node-exporter", **labels, "severity": "warning"}
    return am_entry(all_labels, f"{summary} (instance {instance})",
                    f"{summary}\n  VALUE = 93.1\n  LABELS = map[instance:{instance}]", starts, ends)  # fmt: skip


PODS = [f"checkout-7f9c8d6b5-{s}" for s in ("x2x7q", "kq9zt", "m4n8p", "b7c2d", "r5t6y", "h3j9k", "w8e2r",
                                              "z1x4c", "v6b3n", "q9w2e")]  # fmt: skip


def kubernetes_pods() -> None:
    """Item 1: the resource is the pod/container/volume/node/disk the alert is about, and an incident closes only
    when every one of its firing members resolved."""
    t4h = 4 * 3600
    case("k8s-oom-nine-still-firing", "10 pods OOM-killed; the first pod's resolution must not close the incident "
         "while nine are still being killed (kube-state-metrics' instance is the exporter)",
         ["kubernetes", "resolution", "alertmanager", "real-shape"],
         [*steps(0, am_notify([oom_entry(p, -120 + 10 * i) for i, p in enumerate(PODS)], 0),
                 ["real"] + ["duplicate"] * 9, "P3"),
          *steps(300, am_notify([oom_entry(PODS[0], -120, 290)] + [oom_entry(p, -110 + 10 * i)
                                                                     for i, p in enumerate(PODS[1:])], 300),
                 "duplicate", "P3"),
          *steps(300 + t4h, am_notify([oom_entry(p, -110 + 10 * i) for i, p in enumerate(PODS[1:])], 300 + t4h),
                 "duplicate", "P3"),
          *steps(600 + t4h, am_notify([oom_entry(p, -110 + 10 * i, 590 + t4h) for i, p in enumerate(PODS[1:])],
                                      600 + t4h), "duplicate"),
          *steps(4200 + t4h, am_notify([oom_entry(PODS[5], 4100 + t4h)], 4200 + t4h), "real", "P3")])
    pods = ["ledger-worker-6c9f7d8b4-a1b2c", "ledger-worker-6c9f7d8b4-d3e4f", "ledger-worker-6c9f7d8b4-g5h6i"]
    case("k8s-crashloop-one-incident", "KubePodCrashLooping on 3 pods of one deployment (each with its uid) is one "
         "incident; the pods left firing keep it open", ["kubernetes", "volatile_labels", "alertmanager", "real-shape"],
         [*steps(0, am_notify([crashloop_entry(p, -60) for p in pods], 0), ["real", "duplicate", "duplicate"], "P3"),
          *steps(600, am_notify([crashloop_entry(pods[0], -60, 590)] + [crashloop_entry(p, -60) for p in pods[1:]],
                                600), "duplicate"),
          *steps(600 + t4h, am_notify([crashloop_entry(p, -60) for p in pods[1:]], 600 + t4h), "duplicate", "P3")])

    def not_healthy(pod: str, starts: float, ends: float | None = None) -> dict[str, Any]:
        labels = {"alertname": "KubernetesPodNotHealthy", "namespace": "search", "pod": pod, "severity": "critical"}
        return am_entry(labels, f"Kubernetes Pod not healthy (search/{pod})",
                        f"Pod search/{pod} has been in a non-running state for longer than 15 minutes.\n  VALUE = 1\n"
                        f"  LABELS = map[namespace:search pod:{pod}]", starts, ends)  # fmt: skip

    case("k8s-pod-not-healthy-members", "two StatefulSet pods not healthy: one recovers, the other keeps the "
         "incident; its quick re-fire after the close reopens it", ["kubernetes", "flapping", "alertmanager",
                                                                    "real-shape"],
         [*steps(0, am_notify([not_healthy("search-0", -30), not_healthy("search-1", -20)], 0),
                 ["real", "duplicate"], "P1"),
          *steps(300, am_notify([not_healthy("search-0", -30, 290), not_healthy("search-1", -20)], 300), "duplicate"),
          *steps(300 + t4h, am_notify([not_healthy("search-1", -20)], 300 + t4h), "duplicate", "P1"),
          *steps(600 + t4h, am_notify([not_healthy("search-1", -20, 590 + t4h)], 600 + t4h), "duplicate"),
          *steps(900 + t4h, am_notify([not_healthy("search-1", 850 + t4h)], 900 + t4h), "duplicate", "P1")])

    def pvc(claim: str, node: str, starts: float, ends: float | None = None) -> dict[str, Any]:
        labels = {"alertname": "KubePersistentVolumeFillingUp", "endpoint": "https-metrics",
                  "instance": f"{node}:10250",
                  "job": "kubelet", "metrics_path": "/metrics", "namespace": "orders", "node": node,
                  "persistentvolumeclaim": claim, "service": "kube-prometheus-stack-kubelet",
                  "severity": "critical"}  # fmt: skip
        return am_entry(labels, "PersistentVolume is filling up.",
                        f"The PersistentVolume claimed by {claim} in Namespace orders is only 2.9% free.", starts, ends,
                        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepersistentvolumefillingup")

    case("k8s-pvc-members", "two claims of one StatefulSet filling up: one incident, the claims its members",
         ["kubernetes", "resolution", "alertmanager", "real-shape"],
         [*steps(0, am_notify([pvc("data-orders-db-0", "10.0.1.12", -60), pvc("data-orders-db-1", "10.0.1.13", -50)],
                              0), ["real", "duplicate"], "P1"),
          *steps(900, am_notify([pvc("data-orders-db-0", "10.0.1.12", -60, 890),
                                 pvc("data-orders-db-1", "10.0.1.13", -50)], 900), "duplicate"),
          *steps(900 + t4h, am_notify([pvc("data-orders-db-1", "10.0.1.13", -50)], 900 + t4h), "duplicate", "P1")])
    disk = {"device": "/dev/nvme1n1", "fstype": "ext4", "mountpoint": "/data"}
    root = {"device": "/dev/nvme0n1p1", "fstype": "xfs", "mountpoint": "/"}
    a, b = "10.0.4.21:9100", "10.0.4.22:9100"
    out = ("HostOutOfDiskSpace", "Host out of disk space")
    case("host-out-of-disk-members", "HostOutOfDiskSpace on two hosts and two disks: one incident; it closes when "
         "the last disk is freed, and a disk filling again 2 hours later is a new incident",
         ["host", "resolution", "alertmanager", "real-shape"],
         [*steps(0, am_notify([host_entry(*out, a, -120, **disk), host_entry(*out, b, -90, **disk)], 0,
                              ("alertname",)), ["real", "duplicate"], "P3"),
          *steps(60, am_notify([host_entry(*out, a, 30, **root)], 60, ("alertname",)), "duplicate", "P3"),
          *steps(900, am_notify([host_entry(*out, a, -120, 880, **disk), host_entry(*out, a, 30, 880, **root),
                                 host_entry(*out, b, -90, **disk)], 900, ("alertname",)), "duplicate"),
          *steps(900 + t4h, am_notify([host_entry(*out, b, -90, **disk)], 900 + t4h, ("alertname",)),
                 "duplicate", "P3"),
          *steps(1200 + t4h, am_notify([host_entry(*out, b, -90, 1190 + t4h, **disk)], 1200 + t4h, ("alertname",)),
                 "duplicate"),
          *steps(9000 + t4h, am_notify([host_entry(*out, a, 8950 + t4h, **disk)], 9000 + t4h, ("alertname",)),
                 "real", "P3")])

    def node(name: str, starts: float, ends: float | None = None) -> dict[str, Any]:
        labels = k8s("KubernetesNodeNotReady", "monitoring", "critical", node=name, condition="Ready", status="true")
        return am_entry(labels, f"Kubernetes Node not ready (node {name})",
                        f"Node {name} has been unready for a long time\n  VALUE = 0\n  LABELS = map[node:{name}]",
                        starts, ends)  # fmt: skip

    case("k8s-node-not-ready-members", "two nodes not ready: one incident until both are back; one flapping back "
         "within minutes reopens it", ["kubernetes", "flapping", "alertmanager", "real-shape"],
         [*steps(0, am_notify([node("ip-10-0-1-12.ec2.internal", -300)], 0), "real", "P1"),
          *steps(30, am_notify([node("ip-10-0-1-13.ec2.internal", 20)], 30), "duplicate", "P1"),
          *steps(600, am_notify([node("ip-10-0-1-12.ec2.internal", -300, 590)], 600), "duplicate"),
          *steps(1200, am_notify([node("ip-10-0-1-13.ec2.internal", 20, 1190)], 1200), "duplicate"),
          *steps(1500, am_notify([node("ip-10-0-1-12.ec2.internal", 1450)], 1500), "duplicate", "P1")])

    def deployment(starts: float, ends: float | None = None) -> dict[str, Any]:
        labels = k8s("KubernetesDeploymentReplicasMismatch", "shop", "warning", deployment="cart")
        return am_entry(labels, "Kubernetes Deployment replicas mismatch (shop/cart)",
                        "Deployment Replicas mismatch\n  VALUE = 1\n  LABELS = map[deployment:cart namespace:shop]",
                        starts, ends)  # fmt: skip

    case("k8s-deployment-recurs", "a deployment mismatch resolves, and recurs 30 minutes later: a new incident",
         ["kubernetes", "resolution", "alertmanager", "real-shape"],
         [*steps(0, am_notify([deployment(-60)], 0), "real", "P3"),
          *steps(900, am_notify([deployment(-60, 890)], 900), "duplicate"),
          *steps(2700, am_notify([deployment(2650)], 2700), "real", "P3")])


def volatile_labels() -> None:
    """Item 5: labels that change per restart or scrape replica do not split one problem into many incidents."""

    def oom(pod: str, container_id: str, starts: float) -> dict[str, Any]:
        labels = {"alertname": "ContainerOomKiller", "container": "api", "id": f"/kubepods/burstable/pod{pod[-5:]}/"
                  f"{container_id}", "image": "registry.acme.io/shop/api:1.42.0", "instance": "10.0.1.12:10250",
                  "job": "kubelet", "metrics_path": "/metrics/cadvisor",
                  "name": f"k8s_api_{pod}_shop_{container_id[:8]}_0",
                  "namespace": "shop", "pod": pod, "severity": "warning"}  # fmt: skip
        return am_entry(labels, "Container Oom Killer (instance 10.0.1.12:10250)",
                        f"Container k8s_api_{pod} has been OOMKilled 1 times in the last 1 minutes.\n  VALUE = 1",
                        starts)  # fmt: skip

    case("volatile-cadvisor-id-name", "cAdvisor's id and name change with every container restart: one incident",
         ["volatile_labels", "kubernetes", "alertmanager", "real-shape"],
         [*steps(0, am_notify([oom(PODS[0], "3f1e9a7c0b2d", -10)], 0), "real", "P3"),
          *steps(120, am_notify([oom(PODS[1], "9c8b7a6d5e4f", 100)], 120), "duplicate", "P3"),
          *steps(240, am_notify([oom(PODS[0], "0a1b2c3d4e5f", 230)], 240), "duplicate", "P3")])
    pod = "ledger-worker-6c9f7d8b4-a1b2c"
    case("volatile-prometheus-replica", "an HA Prometheus pair sends the same alert with its replica label",
         ["volatile_labels", "kubernetes", "alertmanager", "real-shape"],
         [*steps(0, am_notify([crashloop_entry(pod, -60, prometheus_replica="prometheus-k8s-0")], 0), "real", "P3"),
          *steps(5, am_notify([crashloop_entry(pod, -60, prometheus_replica="prometheus-k8s-1")], 5), "duplicate",
                 "P3")])
    case("volatile-labels-configured-off", "with triage.volatile_labels emptied the pod uid identifies again",
         ["volatile_labels", "kubernetes", "alertmanager", "real-shape"],
         [*steps(0, am_notify([crashloop_entry(pod, -60)], 0), "real", "P3"),
          *steps(30, am_notify([crashloop_entry("ledger-worker-6c9f7d8b4-d3e4f", 20)], 30), "real", "P3")],
         volatile_labels=[])
    instances = ["i-0a1b2c3d4e5f60718", "i-0f9e8d7c6b5a40312", "i-07c6b5a4f3e2d1c09"]

    def cpu(instance: str, state: str, t: float) -> dict[str, Any]:
        return sns_alarm(f"awsec2-{instance}-High-CPU-Utilization", state, t, dims={"InstanceId": instance})

    case("cw-instance-alarms-one-incident", "per-instance CloudWatch alarms of one auto-scaling group: one "
         "incident, closed when the last instance is OK", ["cloudwatch", "sns", "replicas", "real-shape"],
         [step(0, cpu(instances[0], "ALARM", 0), "real", "P3"),
          step(60, cpu(instances[1], "ALARM", 60), "duplicate", "P3"),
          step(90, cpu(instances[2], "ALARM", 90), "duplicate", "P3"),
          step(600, cpu(instances[0], "OK", 600), "duplicate"),
          step(660, cpu(instances[1], "OK", 660), "duplicate"),
          step(720, cpu(instances[2], "OK", 720), "duplicate"),
          step(3600, cpu(instances[1], "ALARM", 3600), "real", "P3")])
    case("cw-instance-alarms-per-instance", "triage.cloudwatch_per_instance keeps one incident per instance",
         ["cloudwatch", "sns", "real-shape"],
         [step(0, cpu(instances[0], "ALARM", 0), "real", "P3"),
          step(60, cpu(instances[1], "ALARM", 60), "real", "P3")], cloudwatch_per_instance=["awsec2-*"])


def refires_and_flapping() -> None:
    """Item 2: a re-fire soon after a real incident resolved joins (reopens) it; flapping needs many changes."""

    def cpu(instance: str, starts: float, ends: float | None = None) -> dict[str, Any]:
        return host_entry("HostHighCpuLoad", "Host high CPU load", instance, starts, ends)

    host = "10.0.7.3:9100"
    case("refire-after-ten-minutes-firing", "fires for 10 minutes, resolves, fires again 100 s later: the same "
         "incident, reopened (was a new incident)", ["flapping", "resolution", "alertmanager", "real-shape"],
         [*steps(0, am_notify([cpu(host, -60)], 0, ("alertname",)), "real", "P3"),
          *steps(300, am_notify([cpu(host, -60)], 300, ("alertname",)), "duplicate", "P3"),
          *steps(600, am_notify([cpu(host, -60, 600)], 600, ("alertname",)), "duplicate"),
          *steps(700, am_notify([cpu(host, 700)], 700, ("alertname",)), "duplicate", "P3"),
          *steps(1000, am_notify([cpu(host, 700, 990)], 1000, ("alertname",)), "duplicate")])
    dims = {"DBInstanceIdentifier": "orders-db"}
    case("refire-after-five-minutes", "an alarm resolves after 5 minutes and re-fires: the incident is reopened "
         "(was silenced as flapping)", ["flapping", "cloudwatch", "sns", "real-shape"],
         [step(0, sns_alarm("orders-db-cpu-high", "ALARM", 0, namespace="AWS/RDS", dims=dims), "real", "P3"),
          step(300, sns_alarm("orders-db-cpu-high", "OK", 300, namespace="AWS/RDS", dims=dims), "duplicate"),
          step(420, sns_alarm("orders-db-cpu-high", "ALARM", 420, namespace="AWS/RDS", dims=dims), "duplicate",
               "P3")])

    def errors(starts: float, ends: float | None = None) -> dict[str, Any]:
        labels = {"alertname": "SearchHigh5xx", "service": "search", "job": "search-api", "severity": "critical"}
        return am_entry(labels, "Search 5xx ratio above 5%", "5xx ratio is 7.2%", starts, ends)

    def toggle(t: float, firing: bool) -> dict[str, Any]:
        entry = errors(t) if firing else errors(t - 60, t)
        return step(t, am_notify([entry], t)[0], "noise")

    case("flap-after-maintenance", "an alert toggling every minute through the end of a maintenance window has "
         "no incident to go back to: after 4 changes in 10 minutes it is flapping noise",
         ["flapping", "maintenance", "alertmanager", "real-shape"],
         [*[toggle(t, t % 120 == 0) for t in range(0, 480, 60)],
          step(2400, am_notify([errors(2400)], 2400)[0], "real", "P1")],
         maintenance=[{"name": "search-reindex", "service": "search", "starts_at": "2024-06-03T11:00:00Z",
                       "ends_at": "2024-06-03T12:05:00Z"}])  # fmt: skip

    def cpu_b(instance: str, starts: float, ends: float | None = None) -> dict[str, Any]:
        return host_entry("HostHighCpuLoad", "Host high CPU load", instance, starts, ends, env="prod")

    case("blast-radius-counts-firing-only", "two hosts fired and resolved; a third firing later is not raised for "
         "a blast radius of hosts that are fine again", ["blast_radius", "alertmanager", "real-shape"],
         [*steps(0, am_notify([cpu_b("10.0.9.1:9100", -10), cpu_b("10.0.9.2:9100", -5)], 0, ("alertname",)),
                 ["real", "duplicate"], "P3"),
          *steps(120, am_notify([cpu_b("10.0.9.1:9100", -10, 110), cpu_b("10.0.9.2:9100", -5, 110)], 120,
                                ("alertname",)), "duplicate"),
          *steps(800, am_notify([cpu_b("10.0.9.3:9100", 790)], 800, ("alertname",)), "real", "P3")])


PY_LOG_READTIMEOUT = """\
2024-06-03 12:00:00,102 ERROR [payments.gateway] charge failed
Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.12/site-packages/httpcore/_sync/http11.py", line 217, in _receive_event
    data = self._network_stream.read(self.READ_NUM_BYTES, timeout=timeout)
httpcore.ReadTimeout: The read operation timed out

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/srv/app/payments/gateway.py", line 88, in charge
    resp = self.client.post(url, json=body)
  File "/srv/app/.venv/lib/python3.12/site-packages/httpx/_client.py", line 1144, in post
    return self.request("POST", url, content=content, json=json)
  File "/srv/app/.venv/lib/python3.12/site-packages/httpx/_transports/default.py", line 232, in handle_request
    raise mapped_exc(message) from exc
httpx.{exc}: The read operation timed out
"""
PY_SENTRY_READTIMEOUT = [
    {"type": "ReadTimeout", "module": "httpcore", "value": "The read operation timed out", "stacktrace": frames(
        ("/srv/app/.venv/lib/python3.12/site-packages/httpcore/_sync/http11.py", "_receive_event", 217))},
    {"type": "ReadTimeout", "module": "httpx", "value": "The read operation timed out", "stacktrace": frames(
        ("/srv/app/payments/gateway.py", "charge", 88),
        ("/srv/app/.venv/lib/python3.12/site-packages/httpx/_client.py", "post", 1144),
        ("/srv/app/.venv/lib/python3.12/site-packages/httpx/_transports/default.py", "handle_request", 232))},
]  # fmt: skip
PY_LOG_PSYCOPG = """\
Traceback (most recent call last):
  File "/srv/app/ledger/export.py", line 40, in run
    rows = fetch_batch(conn, since)
  File "/srv/app/ledger/db.py", line 17, in fetch_batch
    with connect() as conn:
  File "/srv/app/ledger/db.py", line 9, in connect
    return psycopg2.connect(DSN)
psycopg2.OperationalError: connection to server at "ledger-db" (10.0.2.9), port 5432 failed: Connection refused
"""
PY_SENTRY_PSYCOPG = [{"type": "OperationalError", "module": "psycopg2", "value": "connection refused",
                      "stacktrace": frames(("/srv/app/ledger/export.py", "run", 40), ("/srv/app/ledger/db.py",
                                           "fetch_batch", 17), ("/srv/app/ledger/db.py", "connect", 9))}]  # fmt: skip
JAVA_LOG_NPE = """\
2024-06-03 12:00:01.337 ERROR 1 --- [nio-8080-exec-7] o.a.c.c.C.[.[.[/].[dispatcherServlet] : Servlet.service() threw
org.springframework.web.util.NestedServletException: Request processing failed
\tat org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)
\tat org.springframework.web.servlet.FrameworkServlet.doPost(FrameworkServlet.java:909)
\tat javax.servlet.http.HttpServlet.service(HttpServlet.java:681)
Caused by: java.lang.NullPointerException: Cannot invoke "com.acme.orders.Order.total()" because "order" is null
\tat com.acme.orders.pricing.Pricing.quote(Pricing.java:88)
\tat com.acme.orders.pricing.Pricing.lambda$apply$0(Pricing.java:61)
\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1596)
\tat com.acme.orders.api.CheckoutController.checkout(CheckoutController.java:39)
\tat org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1006)
\t... 2 common frames omitted
"""
_SERVLET = (("javax.servlet.http.HttpServlet", "service", 681),
            ("org.springframework.web.servlet.FrameworkServlet", "doPost", 909))  # fmt: skip
JAVA_SENTRY_NPE = [
    {"type": "NullPointerException", "module": "java.lang", "value": 'Cannot invoke "Order.total()"',
     "stacktrace": frames(*_SERVLET, ("org.springframework.web.servlet.FrameworkServlet", "processRequest", 1006),
                          ("com.acme.orders.api.CheckoutController", "checkout", 39),
                          ("java.util.ArrayList", "forEach", 1596),
                          ("com.acme.orders.pricing.Pricing", "lambda$apply$0", 61),
                          ("com.acme.orders.pricing.Pricing", "quote", 88), module=True)},
    {"type": "NestedServletException", "module": "org.springframework.web.util", "value": "Request processing failed",
     "stacktrace": frames(*_SERVLET, ("org.springframework.web.servlet.FrameworkServlet", "processRequest", 1014),
                          module=True)},
]  # fmt: skip
NODE_LOG = """\
TypeError: Cannot read properties of undefined (reading 'percent')
    at applyCoupon (/app/src/pricing.js:42:19)
    at Array.map (<anonymous>)
    at Object.quote [as handle] (/app/src/api.js:10:3)
    at Layer.handle (/app/node_modules/express/lib/router/layer.js:95:5)
"""
NODE_SENTRY = [{"type": "TypeError", "value": "Cannot read properties of undefined (reading 'percent')",
                "stacktrace": {"frames": [
                    {"abs_path": "/app/node_modules/express/lib/router/layer.js", "function": "Layer.handle",
                     "lineno": 95},
                    {"abs_path": "/app/src/api.js", "function": "Object.quote", "lineno": 10},
                    {"filename": "<anonymous>", "function": "Array.map"},
                    {"abs_path": "/app/src/pricing.js", "function": "applyCoupon", "lineno": 42}]}}]  # fmt: skip
RUBY_LOG = """\
Completed 500 Internal Server Error in 23ms (ActiveRecord: 4.1ms | Allocations: 5120)
NoMethodError (undefined method `price' for nil:NilClass):
  app/models/line_item.rb:12:in `total'
  app/models/order.rb:30:in `block in total'
  app/controllers/orders_controller.rb:5:in `show'
"""
RUBY_SENTRY = [{"type": "NoMethodError", "value": "undefined method 'price' for nil", "stacktrace": frames(
    ("/app/app/controllers/orders_controller.rb", "show", 5), ("/app/app/models/order.rb", "total", 30),
    ("/app/app/models/line_item.rb", "total", 12))}]  # fmt: skip


def two_sources() -> None:
    """Item 3: the same error from a log and from Sentry is one incident, whichever comes first (qualified and bare
    exception types; Java, Ruby and Node frames)."""
    pairs = [
        ("python-httpx", "payments", "python", PY_LOG_READTIMEOUT.format(exc="ReadTimeout"), PY_SENTRY_READTIMEOUT,
         "ReadTimeout: The read operation timed out", "P2"),
        ("python-psycopg2", "ledger-api", "python", PY_LOG_PSYCOPG, PY_SENTRY_PSYCOPG,
         "OperationalError: connection refused", "P2"),
        ("java-npe-caused-by", "orders", "java", JAVA_LOG_NPE, JAVA_SENTRY_NPE,
         "NullPointerException: Cannot invoke \"Order.total()\"", "P2"),
        ("node-native-frame", "search", "node", NODE_LOG, NODE_SENTRY,
         "TypeError: Cannot read properties of undefined (reading 'percent')", "P2"),
        ("ruby-rails", "reports", "ruby", RUBY_LOG, RUBY_SENTRY, "NoMethodError: undefined method 'price' for nil",
         "P3"),
    ]  # fmt: skip
    for n, (name, service, platform, log, exceptions, title, sev) in enumerate(pairs):
        issue = str(5100 + n)
        log_first = n % 2 == 0
        first = log_alert(service, f"{title.split(':')[0]} in {service}", log, 0) if log_first else \
            sentry_event(issue, service, platform, exceptions, 0, title)  # fmt: skip
        second = sentry_event(issue, service, platform, exceptions, 20, title) if log_first else \
            log_alert(service, f"{title.split(':')[0]} in {service}", log, 20)  # fmt: skip
        case(f"two-sources-{name}", f"a log's trace and Sentry's event of one error ({'log' if log_first else 'Sentry'}"
             " first) are one incident", ["two_sources", "sentry", "generic", "real-shape"],
             [step(0, first, "real", sev), step(20, second, "duplicate", sev)])
    case("two-sources-different-errors-apart", "ReadTimeout and ConnectTimeout at the same frames stay apart",
         ["two_sources", "unrelated", "generic", "real-shape"],
         [step(0, log_alert("payments", "ReadTimeout in payments", PY_LOG_READTIMEOUT.format(exc="ReadTimeout"), 0),
               "real", "P2"),
          step(30, log_alert("payments", "ConnectTimeout in payments",
                             PY_LOG_READTIMEOUT.format(exc="ConnectTimeout"), 30), "real", "P2")])


def titles() -> None:
    """Item 4: git short hashes and the kubelet's `pod <name>_<namespace>(<uid>)` normalize away."""
    def deploy(sha: str, t: float) -> dict[str, Any]:
        return normalized("generic", {"title": f"Deploy {sha} of checkout failed health checks", "service": "checkout",
                                      "severity": "error", "occurred_at": iso(t)}, t)[0]  # fmt: skip

    case("title-git-short-hash", "the same deploy failure for two commits (7-character short hashes)",
         ["titles", "generic", "real-shape"],
         [step(0, deploy("3f9a2c1", 0), "real", "P1"), step(600, deploy("8b7e6d5", 600), "duplicate", "P1")])

    def kubelet(pod: str, ns: str, t: float) -> dict[str, Any]:
        uid = uuid.uuid5(uuid.NAMESPACE_DNS, pod)
        return normalized("generic", {"title": f"Error syncing pod {pod}_{ns}({uid}), skipping: back-off 5m0s "
                                      "restarting failed container api", "service": "kubelet", "severity": "warning",
                                      "occurred_at": iso(t)}, t)[0]  # fmt: skip

    case("title-kubelet-pod", "the kubelet's pod_namespace(uid) form: one workload's pods are one incident, "
         "another workload is another", ["titles", "kubernetes", "generic", "real-shape"],
         [step(0, kubelet(PODS[0], "shop", 0), "real", "P3"),
          step(30, kubelet(PODS[1], "shop", 30), "duplicate", "P3"),
          step(60, kubelet("payments-5d4b7c9f8-a1b2c", "shop", 60), "real", "P3")])


def provider_semantics() -> None:
    """Items 6 and 7: PagerDuty priorities, Grafana's DatasourceNoData, Alertmanager repeats, Sentry issues."""
    for prio in ("P4", "P5"):
        case(f"pd-{prio.lower()}-is-low", f"PagerDuty {prio} is a low priority (P3)", ["pagerduty", "real-shape"],
             [step(0, pd_event("incident.triggered", prio, 0, incident=f"Q{prio}"), "real", "P2")])
    case("pd-priority-raised", "PagerDuty raises the incident's priority: the live incident's severity follows",
         ["pagerduty", "duplicate", "real-shape"],
         [step(0, pd_event("incident.triggered", "P3", 0), "real", "P2"),
          step(300, pd_event("incident.priority_updated", "P1", 300), "duplicate", "P0"),
          step(600, pd_event("incident.escalated", "P1", 600), "duplicate", "P0")])

    def nodata(t: float) -> list[dict[str, Any]]:
        labels = {"alertname": "DatasourceNoData", "datasource_uid": "P1809F7CD0C75ACF3", "grafana_folder": "Checkout",
                  "ref_id": "A", "rulename": "Checkout 5xx rate", "service": "payments", "severity": "critical"}
        entry = am_entry(labels, "Checkout 5xx rate above 5%", "", t - 30)
        body_entry = {**entry, "valueString": "", "silenceURL": "http://grafana:3000/alerting/silence/new"}
        return am_notify([body_entry], t, ("alertname",), provider="grafana")

    case("grafana-datasource-nodata", "Grafana's DatasourceNoData: noise by default, like INSUFFICIENT_DATA",
         ["grafana", "noise_hint", "real-shape"], [*steps(0, nodata(0), "noise")])
    case("grafana-datasource-nodata-real", "with triage.datasource_nodata: real it is judged like any alert",
         ["grafana", "noise_hint", "real-shape"], [*steps(0, nodata(0), "real", "P1")], datasource_nodata="real")
    pod = "ledger-worker-6c9f7d8b4-a1b2c"
    case("am-repeat-12h", "Alertmanager repeats a group that never resolved every 4 hours: it extends the live "
         "incident, also past the 6-hour dedup window", ["alertmanager", "duplicate", "dedup_window", "real-shape"],
         [s for t in (0, 4 * 3600, 8 * 3600, 12 * 3600)
          for s in steps(t, am_notify([crashloop_entry(pod, -60)], t), "real" if t == 0 else "duplicate", "P3")])
    title, culprit = "KeyError: 'currency'", "payments.fx in convert"
    exc = [{"type": "KeyError", "value": "'currency'", "stacktrace": frames(
        ("/srv/app/payments/api.py", "quote", 12), ("/srv/app/payments/fx.py", "convert", 33),
        ("/srv/app/payments/fx.py", "rate_for", 51))}]  # fmt: skip

    def event(t: float) -> dict[str, Any]:
        return sentry_event("7301", "payments", "python", exc, t, title, culprit)

    case("sentry-issue-then-event", "Sentry's issue webhook, then the alert rule's event of the same issue: one "
         "incident; the issue's resolution closes it", ["sentry", "duplicate", "resolution", "real-shape"],
         [step(0, sentry_issue("7301", "payments", title, culprit, "created", 0), "real", "P2"),
          step(5, event(5), "duplicate", "P2"),
          step(3600, sentry_issue("7301", "payments", title, culprit, "resolved", 3600), "duplicate"),
          step(9000, event(9000), "real", "P2")])
    case("sentry-event-then-issue", "the alert rule's event first, then the issue webhook: one incident",
         ["sentry", "duplicate", "resolution", "real-shape"],
         [step(0, event(0), "real", "P2"),
          step(5, sentry_issue("7301", "payments", title, culprit, "created", 5), "duplicate", "P2"),
          step(3600, sentry_issue("7301", "payments", title, culprit, "resolved", 3600), "duplicate"),
          step(9000, event(9000), "real", "P2")])


def main() -> None:
    singles()
    more()
    storms()
    flapping()
    spikes()
    resolutions()
    replicas_and_unrelated()
    maintenance()
    known_noise_and_hints()
    open_after()
    undecided_and_windows()
    hard()
    kubernetes_pods()
    volatile_labels()
    refires_and_flapping()
    two_sources()
    titles()
    provider_semantics()
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    with OUT.open("w") as f:
        for c in CASES:
            f.write(json.dumps(c, separators=(",", ":")) + "\n")
    print(f"wrote {len(CASES)} cases to {OUT}")


if __name__ == "__main__":
    main()

"""Writes services/triage/data/triage_golden.jsonl (package data): labelled alert sequences in the shapes ingest
normalizes providers to.

    .venv/bin/python tests/evals/make_triage_golden.py

Labels say what an on-call engineer wants (wake a human or not, how urgently), not what the rules happen to
do: a few cases are known misses of the rules and stay in the set (their ids start with `hard-`).
Edit the scenarios here, re-run, and commit both files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The dataset ships inside the package (read by `pagerpatch eval triage` through importlib.resources).
OUT = Path(__file__).resolve().parents[2] / "services" / "triage" / "data" / "triage_golden.jsonl"

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
    """ALARM/OK toggling: one incident at most, the toggles after it are noise."""
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
              step(240, cw("ALARM"), "noise"), step(360, cw("OK"), "noise"),
              step(480, cw("ALARM"), "noise"), step(600, cw("OK"), "noise")])
    for n, (svc, name, kind) in enumerate([("search", "SearchHigh5xx", "availability"),
                                           ("payments", "PaymentsLatency", "latency"),
                                           ("reports", "ReportsQueue", "saturation")]):
        def am(status: str, svc: str = svc, name: str = name, kind: str = kind) -> dict[str, Any]:
            return alertmanager(name, svc, f"{name} firing", severity="warning", status=status, kind=kind,
                                instance="10.0.3.7:9100")

        case(f"flap-am-{n}", "Alertmanager alert resolves and re-fires within minutes", ["flapping", "alertmanager"],
             [step(0, am("firing"), "real"), step(60, am("resolved"), "duplicate"), step(150, am("firing"), "noise"),
              step(200, am("resolved"), "noise"), step(260, am("firing"), "noise")])
    case("flap-then-calm-recurs", "after toggling stops for an hour the alert is real again",
         ["flapping", "cloudwatch"],
         [step(0, cloudwatch("search-alb-p99-latency-high", "search"), "real", "P2"),
          step(60, cloudwatch("search-alb-p99-latency-high", "search", state="OK"), "duplicate"),
          step(120, cloudwatch("search-alb-p99-latency-high", "search"), "noise"),
          step(180, cloudwatch("search-alb-p99-latency-high", "search", state="OK"), "noise"),
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
               "noise")], flapping_window_s=900)


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
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    with OUT.open("w") as f:
        for c in CASES:
            f.write(json.dumps(c, separators=(",", ":")) + "\n")
    print(f"wrote {len(CASES)} cases to {OUT}")


if __name__ == "__main__":
    main()

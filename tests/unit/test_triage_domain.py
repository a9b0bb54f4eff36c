"""Triage identity and severity: title normalization, top frames, fingerprint/group, severity (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import AlertReceivedPayload, Severity
from services.ingest.providers.sentry import render_trace
from services.triage.domain.fingerprint import (
    IdentityRules,
    canonical_inputs,
    fingerprint,
    keys,
    normalize_title,
    regrouped,
    top_frames,
)
from services.triage.domain.severity import severity

# ---------------------------------------------------------------- normalize_title


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Timeout for order 123", "timeout for order <n>"),
        ("Latency 3.14s over budget", "latency <n>s over budget"),
        ("User 8F14E45F-CEA1-4AB4-9C3D-1234567890AB not found", "user <uuid> not found"),
        ("user 8f14e45f-cea1-4ab4-9c3d-1234567890ab not found", "user <uuid> not found"),
        ("segfault at 0xDEADBEEF", "segfault at <hex>"),
        ("commit deadbeefcafe1234 broke the build", "commit <hex> broke the build"),
        ("trace 4bf92f3577b34da6a3ce929d0e0e4736 slow", "trace <hex> slow"),
        ("KeyError: 'SUMMER24'", "keyerror: <str>"),
        ('unknown column "user_name"', "unknown column <str>"),
        ("  Disk   FULL\t on \n /var  ", "disk full on /var"),
        ("HELLO World", "hello world"),
        ("no volatile parts here", "no volatile parts here"),
    ],
)
def test_normalize_title(title: str, expected: str) -> None:
    assert normalize_title(title) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Timeout for order 123 after 30s", "Timeout for order 98765 after 5s"),
        (
            "Request 11111111-2222-3333-4444-555555555555 failed",
            "request aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee FAILED",
        ),
        ("KeyError: 'SUMMER24'", "KeyError: 'WINTER25'"),
        ("bad pointer 0x7ffd1234", "bad pointer 0x0"),
        ("Disk full on  node-1", "disk full on node-22"),
    ],
)
def test_recurrences_normalize_alike(first: str, second: str) -> None:
    assert normalize_title(first) == normalize_title(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Timeout for order 1", "Timeout for payment 1"),
        ("KeyError: 'x'", "ValueError: 'x'"),
    ],
)
def test_different_problems_normalize_differently(first: str, second: str) -> None:
    assert normalize_title(first) != normalize_title(second)


def test_quoted_value_after_a_contraction_is_replaced() -> None:
    assert normalize_title("Can't find user 'alice'") == normalize_title("Can't find user 'bob'")


# ---------------------------------------------------------------- top_frames


def py_trace(lines: tuple[int, int, int], root: str = "/srv/app") -> str:
    a, b, c = lines
    return (
        "Traceback (most recent call last):\n"
        f'  File "{root}/shopcart/api.py", line {a}, in checkout\n'
        "    priced = quote(cart, coupon_code)\n"
        f'  File "{root}/shopcart/pricing.py", line {b}, in quote\n'
        "    coupon = find_coupon(code)\n"
        f'  File "{root}/shopcart/pricing.py", line {c}, in find_coupon\n'
        "    return COUPONS[normalize_code(code)]\n"
        "           ~~~~~~~^^^^^^^^^^^^^^^^^^^^^^\n"
        "KeyError: 'SUMMER24'\n"
    )


PY_FOUR = (
    "Traceback (most recent call last):\n"
    '  File "/app/main.py", line 5, in <module>\n'
    "    run()\n"
    '  File "/app/orders/service.py", line 10, in run\n'
    "    place()\n"
    '  File "/app/orders/service.py", line 20, in place\n'
    "    charge()\n"
    '  File "/app/billing/charge.py", line 30, in charge\n'
    "    raise RuntimeError('declined')\n"
    "RuntimeError: declined\n"
)


@pytest.mark.parametrize(
    ("trace", "n", "expected"),
    [
        (py_trace((50, 60, 64)), 3, ["api.py:checkout", "pricing.py:quote", "pricing.py:find_coupon"]),
        (py_trace((50, 60, 64)), 1, ["pricing.py:find_coupon"]),
        (PY_FOUR, 3, ["service.py:run", "service.py:place", "charge.py:charge"]),
        (PY_FOUR, 10, ["main.py:<module>", "service.py:run", "service.py:place", "charge.py:charge"]),
        (None, 3, []),
        ("", 3, []),
        ("just a log line, no trace", 3, []),
    ],
)
def test_top_frames(trace: str | None, n: int, expected: list[str]) -> None:
    assert top_frames(trace, n) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (py_trace((50, 60, 64)), py_trace((51, 77, 90))),
        (py_trace((50, 60, 64), root="/srv/app-v1"), py_trace((50, 61, 64), root="/opt/deploy/release-2")),
    ],
)
def test_top_frames_ignore_line_numbers_and_directories(first: str, second: str) -> None:
    assert top_frames(first) == top_frames(second) != []


# ---------------------------------------------------------------- fingerprint


def alert(**overrides: Any) -> AlertReceivedPayload:
    fields: dict[str, Any] = {
        "source": "generic",
        "service": "shopcart",
        "title": "KeyError in checkout for order 1234",
        "stack_trace": py_trace((50, 60, 64)),
    }
    fields.update(overrides)
    return AlertReceivedPayload(**fields)


OTHER_TRACE = PY_FOUR


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (alert(), alert()),
        (alert(), alert(title="KeyError in checkout for order 98765")),
        (alert(title="job 0xdeadbeef failed 3 times"), alert(title="Job 0x1 failed 12 times")),
        (
            alert(title="user 11111111-2222-3333-4444-555555555555 checkout"),
            alert(title="user 99999999-8888-7777-6666-555555555555 checkout"),
        ),
        (alert(), alert(stack_trace=py_trace((51, 70, 99)))),
        (alert(), alert(description="different text", labels={"pod": "web-2"}, delivery_id="abc")),
    ],
)
def test_same_problem_same_fingerprint(first: AlertReceivedPayload, second: AlertReceivedPayload) -> None:
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize(
    "other",
    [
        alert(service="payments"),
        alert(stack_trace=OTHER_TRACE),
        alert(stack_trace=None),
        alert(stack_trace=None, title="ValueError in checkout for order 1234"),
    ],
)
def test_different_problem_different_fingerprint(other: AlertReceivedPayload) -> None:
    assert fingerprint(other) != fingerprint(alert())


@pytest.mark.parametrize(
    "payload",
    [
        alert(fingerprint="sentry-issue-42"),
        alert(fingerprint="sentry-issue-42", service="payments", title="something else entirely"),
    ],
)
def test_explicit_fingerprint_wins(payload: AlertReceivedPayload) -> None:
    assert fingerprint(payload) == "sentry-issue-42"


def test_computed_fingerprint_is_32_hex_chars() -> None:
    fp = fingerprint(alert())
    assert len(fp) == 32
    assert int(fp, 16) >= 0


# ---------------------------------------------------------------- severity


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("p0", Severity.P0),
        ("SEV-0", Severity.P0),
        ("fatal", Severity.P0),
        ("emergency", Severity.P0),
        ("critical", Severity.P1),
        ("High", Severity.P1),
        ("sev1", Severity.P1),
        ("error", Severity.P2),
        ("major", Severity.P2),
        ("p2", Severity.P2),
        ("warning", Severity.P3),
        ("warn", Severity.P3),
        ("info", Severity.P3),
        ("  low  ", Severity.P3),
        ("P4", Severity.P3),  # PagerDuty's low priorities
        ("P5", Severity.P3),
        ("SEV-4", Severity.P3),
    ],
)
def test_severity_from_hint_words(hint: str, expected: Severity) -> None:
    decision = severity(hint, tier=2, default=Severity.P2)
    assert decision.severity == expected
    assert decision.reasons == (f"severity: hint {hint!r} -> {expected.value}",)


@pytest.mark.parametrize(
    ("hint", "default"),
    [
        (None, Severity.P2),
        ("", Severity.P3),
        ("banana", Severity.P1),
        ("sev 9", Severity.P2),
    ],
)
def test_unknown_hint_uses_default_with_reason(hint: str | None, default: Severity) -> None:
    decision = severity(hint, tier=None, default=default)
    assert decision.severity == default
    assert decision.reasons == (f"severity: no usable hint ({hint!r}); default {default.value}",)


@pytest.mark.parametrize(
    ("hint", "tier", "expected", "tier_reason"),
    [
        ("p1", 0, Severity.P0, "severity: tier-0 service, raised one level"),
        ("warning", 0, Severity.P2, "severity: tier-0 service, raised one level"),
        ("p0", 0, Severity.P0, None),  # never above P0
        ("p0", 3, Severity.P1, "severity: tier-3 service, lowered one level"),
        ("error", 3, Severity.P3, "severity: tier-3 service, lowered one level"),
        ("info", 3, Severity.P3, None),  # never below P3
        ("error", 1, Severity.P2, None),
        ("error", 2, Severity.P2, None),
        ("error", None, Severity.P2, None),
        (None, 0, Severity.P1, "severity: tier-0 service, raised one level"),  # default P2, raised
    ],
)
def test_tier_adjusts_severity(hint: str | None, tier: int | None, expected: Severity, tier_reason: str | None) -> None:
    decision = severity(hint, tier, default=Severity.P2)
    assert decision.severity == expected
    assert len(decision.reasons) == (2 if tier_reason else 1)
    if tier_reason:
        assert decision.reasons[-1] == tier_reason


# ---------------------------------------------------------------- severity: kind and blast radius


@pytest.mark.parametrize(
    ("hint", "kind", "expected"),
    [
        (None, "availability", Severity.P1),
        (None, "error", Severity.P2),
        (None, "latency", Severity.P2),
        (None, "saturation", Severity.P3),
        (None, "ci_failure", Severity.P3),
        (None, "something-new", Severity.P2),  # unknown kind: the default
        ("critical", "ci_failure", Severity.P1),  # the source's own severity wins over the kind
    ],
)
def test_kind_sets_severity_when_the_source_gives_none(hint: str | None, kind: str, expected: Severity) -> None:
    assert severity(hint, None, Severity.P2, kind).severity == expected


@pytest.mark.parametrize(
    ("radius", "expected", "raised"),
    [(1, Severity.P2, False), (2, Severity.P2, False), (3, Severity.P1, True), (40, Severity.P1, True)],
)
def test_blast_radius_raises_one_level_at_the_threshold(radius: int, expected: Severity, raised: bool) -> None:
    decision = severity("error", None, Severity.P2, None, blast_radius=radius, blast_threshold=3)
    assert decision.severity == expected
    assert any("blast radius" in r for r in decision.reasons) == raised


def test_tier_and_blast_radius_stack_but_never_pass_p0() -> None:
    assert severity("error", 0, Severity.P2, None, 5, 3).severity == Severity.P0
    assert severity("critical", 0, Severity.P2, None, 5, 3).severity == Severity.P0


# ---------------------------------------------------------------- replicas, hosts, groups


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("OOMKilled checkout-7f9c8d6b5-x2x7q", "OOMKilled checkout-7f9c8d6b5-kq9zt"),
        ("OOMKilled checkout-7f9c8d6b5-x2x7q", "OOMKilled checkout-5d4b7c9f8-a1b2c"),
        ("disk full on ip-10-0-0-1", "disk full on ip-10-0-12-201"),
        ("instance i-0abc123def4567890 unhealthy", "instance i-0fff9990aaa111222 unhealthy"),
        ("upstream 10.0.3.7:8080 refused", "upstream 10.0.9.12:8080 refused"),
        ("job failed at 2024-06-03T12:00:01Z", "job failed at 2024-06-04T08:30:00.123+00:00"),
        ("fluentd-8kx2p restarted", "fluentd-z9q4m restarted"),
    ],
)
def test_replica_hosts_and_timestamps_normalize_alike(first: str, second: str) -> None:
    assert normalize_title(first) == normalize_title(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("OOMKilled checkout-7f9c8d6b5-x2x7q", "OOMKilled payments-7f9c8d6b5-x2x7q"),
        ("disk full on orders-db", "disk full on users-db"),
    ],
)
def test_different_workloads_stay_apart(first: str, second: str) -> None:
    assert normalize_title(first) != normalize_title(second)


def test_canonical_inputs_sort_normalize_and_drop_resource_keys() -> None:
    a = canonical_inputs({"alertname": "HighLatency", "instance": "10.0.0.1:9100", "job": "api"})
    b = canonical_inputs({"job": "api", "instance": "10.0.0.2:9100", "alertname": "HighLatency"})
    assert a == b == "alertname=highlatency;job=api"


def test_same_error_from_another_source_joins_the_group_but_is_its_own_alert() -> None:
    generic, sentry = keys(alert()), keys(alert(source="sentry"))
    assert generic.group_key == sentry.group_key
    assert generic.fingerprint != sentry.fingerprint


def test_replicas_share_group_and_fingerprint_but_keep_their_resource() -> None:
    a = keys(alert(stack_trace=None, title="5xx on checkout", resource="checkout-7f9c8d6b5-x2x7q"))
    b = keys(alert(stack_trace=None, title="5xx on checkout", resource="checkout-7f9c8d6b5-kq9zt"))
    assert a.group_key == b.group_key and a.fingerprint == b.fingerprint
    assert (a.resource, b.resource) == ("checkout-7f9c8d6b5-x2x7q", "checkout-7f9c8d6b5-kq9zt")


def test_fingerprint_inputs_identify_an_alert_whatever_its_title_says() -> None:
    one = alert(stack_trace=None, title="CPU 91% on db", fingerprint_inputs={"alarm": "db-cpu-high"})
    two = alert(stack_trace=None, title="CPU at 97 percent", fingerprint_inputs={"alarm": "db-cpu-high"})
    other = alert(stack_trace=None, title="CPU 91% on db", fingerprint_inputs={"alarm": "db-memory-high"})
    assert fingerprint(one) == fingerprint(two) != fingerprint(other)


# ---------------------------------------------------------------- real alert shapes (issue 17)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Deploy 3f9a2c1 of checkout failed", "Deploy 8b7e6d5 of checkout failed"),  # git short hashes
        ("build 1a2b3c4d red", "build 9f8e7d6c red"),
        (
            "Error syncing pod checkout-7f9c8d6b5-x2x7q_shop(0f6a3c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6), skipping",
            "Error syncing pod checkout-7f9c8d6b5-kq9zt_shop(9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b), skipping",
        ),
        ("pod postgres-0_db(0f6a3c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6) restarted",
         "pod postgres-1_db(9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b) restarted"),
    ],
)  # fmt: skip
def test_short_hashes_and_kubelet_pods_normalize_alike(first: str, second: str) -> None:
    assert normalize_title(first) == normalize_title(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Error syncing pod checkout-7f9c8d6b5-x2x7q_shop(0f6a3c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6)",
         "Error syncing pod payments-7f9c8d6b5-x2x7q_shop(0f6a3c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6)"),
        ("Error syncing pod checkout-7f9c8d6b5-x2x7q_shop(0f6a3c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6)",
         "Error syncing pod checkout-7f9c8d6b5-x2x7q_cart(0f6a3c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6)"),
        ("facade cafe deadbeef", "facade cafe beefdead"),  # words of hex letters stay words
        ("retry 1234567 times", "retry 7654321 times seen"),
    ],
)  # fmt: skip
def test_workloads_namespaces_and_words_stay_apart(first: str, second: str) -> None:
    assert normalize_title(first) != normalize_title(second)


KSM_LABELS = {"alertname": "KubePodCrashLooping", "job": "kube-state-metrics", "instance": "10.244.3.17:8080",
              "namespace": "payments", "container": "worker", "reason": "CrashLoopBackOff"}  # fmt: skip


def test_volatile_and_where_labels_leave_the_identity() -> None:
    a = canonical_inputs({**KSM_LABELS, "pod": "w-6c9f7d8b4-a1b2c", "uid": "1111", "prometheus_replica": "p-0"})
    b = canonical_inputs({**KSM_LABELS, "pod": "w-6c9f7d8b4-d3e4f", "uid": "2222", "prometheus_replica": "p-1"})
    assert a == b == "alertname=kubepodcrashlooping;job=kube-state-metrics;namespace=payments;reason=crashloopbackoff"
    cadvisor = {"alertname": "ContainerOomKiller", "id": "/kubepods/pod1/abc", "name": "k8s_api_x_0", "pod": "x"}
    assert canonical_inputs(cadvisor) == "alertname=containeroomkiller"
    disk = {"alertname": "HostOutOfDiskSpace", "mountpoint": "/data", "device": "/dev/sdb", "fstype": "ext4"}
    assert canonical_inputs(disk) == "alertname=hostoutofdiskspace"


def test_volatile_labels_are_configurable() -> None:
    keep_uid = IdentityRules(volatile_labels=frozenset())
    a = canonical_inputs({**KSM_LABELS, "uid": "1111"}, keep_uid)
    b = canonical_inputs({**KSM_LABELS, "uid": "2222"}, keep_uid)
    assert a != b and "uid=1111" in a


def cw(instance: str, **fields: Any) -> AlertReceivedPayload:
    name = f"awsec2-{instance}-High-CPU-Utilization"
    inputs = {"alarm": f"arn:aws:cloudwatch:us-east-1:1:alarm:{name}", "account": "1"}
    return alert(source="sns", service=instance, title=name, stack_trace=None,
                 resource=f"AWS/EC2 InstanceId={instance}", fingerprint_inputs=inputs, **fields)  # fmt: skip


def test_cloudwatch_instance_alarms_group_by_default_and_split_per_service_option() -> None:
    a, b = keys(cw("i-0a1b2c3d4e5f60718")), keys(cw("i-0f9e8d7c6b5a40312"))
    assert a.group_key == b.group_key and a.resource != b.resource
    per_instance = IdentityRules(cloudwatch_per_instance=("awsec2-*",))
    assert keys(cw("i-0a1b2c3d4e5f60718"), per_instance).group_key != keys(cw("i-0f9e8d7c6b5a40312"),
                                                                             per_instance).group_key  # fmt: skip
    assert keys(cw("i-0a1b2c3d4e5f60718"), IdentityRules(cloudwatch_per_instance=("i-*",))).group_key != a.group_key


def sentry_rendered(platform: str, exceptions: list[dict[str, Any]]) -> str:
    trace = render_trace({"platform": platform, "exception": {"values": exceptions}})
    assert trace is not None
    return trace


@pytest.mark.parametrize(
    ("log", "platform", "exceptions"),
    [
        pytest.param(
            'Traceback (most recent call last):\n  File "/srv/app/pay/gateway.py", line 88, in charge\n'
            '  File "/venv/lib/python3.12/site-packages/httpx/_client.py", line 1144, in post\n'
            "httpx.ReadTimeout: timed out\n",
            "python",
            [{"type": "ReadTimeout", "module": "httpx", "value": "timed out", "stacktrace": {"frames": [
                {"abs_path": "/srv/app/pay/gateway.py", "function": "charge", "lineno": 90},
                {"abs_path": "/venv/lib/python3.12/site-packages/httpx/_client.py", "function": "post",
                 "lineno": 1144}]}}],
            id="python-module-qualified-type",
        ),
        pytest.param(
            "org.springframework.web.util.NestedServletException: Request processing failed\n"
            "\tat com.acme.api.Checkout.run(Checkout.java:41)\n"
            "\tat com.acme.Main.main(Main.java:12)\n"
            "Caused by: java.lang.NullPointerException: order is null\n"
            "\tat com.acme.pricing.Pricing.quote(Pricing.java:88)\n"
            "\tat com.acme.api.Checkout.run(Checkout.java:39)\n"
            "\t... 1 more\n",
            "java",
            [{"type": "NullPointerException", "module": "java.lang", "value": "order is null", "stacktrace": {
                "frames": [{"module": "com.acme.Main", "function": "main", "filename": "Main.java", "lineno": 12},
                           {"module": "com.acme.api.Checkout", "function": "run", "filename": "Checkout.java",
                            "lineno": 39},
                           {"module": "com.acme.pricing.Pricing", "function": "quote", "filename": "Pricing.java",
                            "lineno": 88}]}},
             {"type": "NestedServletException", "module": "org.springframework.web.util", "value": "failed",
              "stacktrace": {"frames": [{"module": "com.acme.Main", "function": "main", "filename": "Main.java",
                                         "lineno": 12},
                                        {"module": "com.acme.api.Checkout", "function": "run",
                                         "filename": "Checkout.java", "lineno": 41}]}}],
            id="java-caused-by-and-bare-type",
        ),
        pytest.param(
            "TypeError: x\n    at applyCoupon (/app/src/pricing.js:42:19)\n    at Array.map (<anonymous>)\n"
            "    at Object.quote [as handle] (/app/src/api.js:10:3)\n",
            "node",
            [{"type": "TypeError", "value": "x", "stacktrace": {"frames": [
                {"abs_path": "/app/src/api.js", "function": "Object.quote", "lineno": 10},
                {"filename": "<anonymous>", "function": "Array.map"},
                {"abs_path": "/app/src/pricing.js", "function": "applyCoupon", "lineno": 42}]}}],
            id="node-native-frame",
        ),
        pytest.param(
            "NoMethodError (undefined method `price' for nil:NilClass):\n"
            "  app/models/line_item.rb:12:in `total'\n  app/controllers/orders_controller.rb:5:in `show'\n",
            "ruby",
            [{"type": "NoMethodError", "value": "undefined method", "stacktrace": {"frames": [
                {"abs_path": "/app/app/controllers/orders_controller.rb", "function": "show", "lineno": 5},
                {"abs_path": "/app/app/models/line_item.rb", "function": "total", "lineno": 12}]}}],
            id="ruby",
        ),
    ],
)  # fmt: skip
def test_the_same_error_from_a_log_and_from_sentry_is_one_group(
    log: str, platform: str, exceptions: list[dict[str, Any]]
) -> None:
    from_log = keys(alert(stack_trace=log))
    from_sentry = keys(alert(source="sentry", stack_trace=sentry_rendered(platform, exceptions),
                             fingerprint_inputs={"issue": "42", "project": "shopcart"}))  # fmt: skip
    assert from_log.group_key == from_sentry.group_key
    assert from_sentry.alias is not None and from_log.alias is None  # the Sentry issue it also belongs to


def test_a_sentry_issue_webhook_is_its_issues_group_and_joins_another_as_the_same_member() -> None:
    issue = keys(alert(source="sentry", stack_trace=None, resource="pay.fx in convert",
                       fingerprint_inputs={"issue": "42", "project": "shopcart"}))  # fmt: skip
    event = keys(alert(source="sentry", resource="pay.fx in convert",
                       fingerprint_inputs={"issue": "42", "project": "shopcart"}))  # fmt: skip
    assert issue.linkable and issue.group_key == event.alias
    joined = regrouped(issue, event.group_key, "sentry")
    assert (joined.group_key, joined.fingerprint) == (event.group_key, event.fingerprint)

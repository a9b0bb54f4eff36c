"""The metrics module on its own: the dashboard names only what we export, breakers and the sandbox move their
series, the consumer-lag reader answers in time (or from its last reading), and a process serves real /metrics."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from pagerpatch.kernel import metrics
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Transient
from pagerpatch.settings.metrics import MetricsSettings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "pagerpatch.json"
SERIES = re.compile(r"\bpagerpatch_[a-z_]+\b")


def _exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in data["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in data["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


def _labels_of(series: str) -> set[str]:
    assert series in metrics.exported_series(), series
    family = re.sub(r"_(total|bucket|sum|count)$", "", series)
    return set(metrics.label_names()[family]) | ({"le"} if series.endswith("_bucket") else set())


def test_every_dashboard_query_names_series_we_export_with_their_labels() -> None:
    exported = metrics.exported_series()
    used: set[str] = set()
    for expr in _exprs():
        names = set(SERIES.findall(expr))
        assert names, f"a panel queries no pagerpatch series: {expr}"
        assert names <= exported, f"{expr}: {sorted(names - exported)} not exported"
        used |= names
        allowed = set().union(*(_labels_of(n) for n in names))
        for group in re.findall(r"by \(([^)]*)\)", expr):
            grouped = {g.strip() for g in group.split(",")}
            assert grouped <= allowed, f"{expr}: grouped by {sorted(grouped - allowed)}, not a label"
        for label in re.findall(r"\{(\w+)=", expr):
            assert label in allowed, f"{expr}: filters on {label}, not a label"
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in exported}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    assert families == shown, f"not on the dashboard: {sorted(families - shown)}"


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_breaker_state_and_refusals_follow_the_real_breaker() -> None:
    breakers = Breakers(threshold=2, reset_after_s=60)
    dep = f"dep-{time.monotonic_ns()}"

    async def failing() -> None:
        raise ConnectionError("refused")

    async def fine() -> str:
        return "ok"

    assert await breakers.call(dep, fine) == "ok"
    assert _value("pagerpatch_breaker_state", dependency=dep) == 0
    for _ in range(2):
        with pytest.raises(Transient):
            await breakers.call(dep, failing)
    assert _value("pagerpatch_breaker_state", dependency=dep) == 2  # open after `threshold` failures
    assert await breakers.state(dep) == "opened"
    with pytest.raises(Transient, match="circuit open"):
        await breakers.call(dep, fine)
    assert _value("pagerpatch_breaker_rejections_total", dependency=dep) == 1


def test_sandbox_runs_and_llm_calls_are_counted_by_their_labels() -> None:
    before = _value("pagerpatch_sandbox_runs_total", backend="unsandboxed", outcome="timed_out")
    metrics.sandbox_run("unsandboxed", passed=False, timed_out=True, seconds=3.0)
    metrics.sandbox_run("unsandboxed", passed=True, timed_out=False, seconds=1.0)
    assert _value("pagerpatch_sandbox_runs_total", backend="unsandboxed", outcome="timed_out") == before + 1
    usage = SimpleNamespace(input_tokens=120, output_tokens=30, cache_read_tokens=0, cache_write_tokens=7)
    agent = f"agent-{time.monotonic_ns()}"
    metrics.llm_call(agent, "claude-test", "ok", usage, 0.25)
    metrics.llm_call(agent, "claude-test", "error", SimpleNamespace(), 0.0)
    assert _value("pagerpatch_llm_tokens_total", agent=agent, kind="input") == 120
    assert _value("pagerpatch_llm_tokens_total", agent=agent, kind="cache_write") == 7
    assert _value("pagerpatch_llm_cost_usd_total", agent=agent) == pytest.approx(0.25)
    assert _value("pagerpatch_llm_calls_total", agent=agent, model="claude-test", outcome="error") == 1


def test_a_service_port_comes_from_ports_then_port() -> None:
    assert MetricsSettings().port_for("triage") is None
    assert MetricsSettings(port=9090).port_for("triage") == 9090
    both = MetricsSettings(port=9090, ports={"triage": 9101})
    assert both.port_for("triage") == 9101 and both.port_for("review") == 9090


@pytest.fixture
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread, like a service's (the scrape comes from another thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _info(pending: int) -> Any:
    return SimpleNamespace(num_pending=pending, num_ack_pending=1, num_redelivered=0, num_waiting=2)


def test_lag_is_read_on_the_service_loop_and_cached(loop_thread: asyncio.AbstractEventLoop) -> None:
    reads: list[threading.Thread] = []

    async def read() -> Sequence[tuple[str, str, Any]]:
        reads.append(threading.current_thread())
        return [("S", "c", _info(len(reads)))]

    source = metrics.LagSource(read, loop_thread, timeout_s=2.0, cache_s=60.0)
    [(_, _, first)] = source.readings()
    assert first.num_pending == 1 and source.ok
    assert source.readings()[0][2].num_pending == 1  # from the cache
    source.cache_s = 0.0
    assert source.readings()[0][2].num_pending == 2
    assert all(t is not threading.current_thread() for t in reads)


def test_a_slow_server_answers_from_the_last_reading_within_the_timeout(loop_thread: asyncio.AbstractEventLoop) -> None:
    slow = False

    async def read() -> Sequence[tuple[str, str, Any]]:
        if slow:
            await asyncio.sleep(30)
        return [("S", "c", _info(4))]

    source = metrics.LagSource(read, loop_thread, timeout_s=0.3, cache_s=0.0)
    assert source.readings()[0][2].num_pending == 4
    slow = True
    started = time.monotonic()
    assert source.readings()[0][2].num_pending == 4  # the last reading...
    assert time.monotonic() - started < 2
    assert source.ok is False  # ...and pagerpatch_consumer_lag_up says it is stale
    metrics.CONSUMER_LAG.add(source)
    try:
        text = metrics.exposition()[0].decode()
    finally:
        metrics.CONSUMER_LAG.remove(source)
    assert 'pagerpatch_consumer_lag_up{consumer="c",stream="S"} 0.0' in text
    assert 'pagerpatch_consumer_pending{consumer="c",stream="S"} 4.0' in text


async def test_a_scrape_on_the_service_loop_itself_never_blocks_it() -> None:
    async def read() -> Sequence[tuple[str, str, Any]]:
        return [("S", "c", _info(9))]

    source = metrics.LagSource(read, asyncio.get_running_loop(), timeout_s=5.0, cache_s=0.0)
    started = time.monotonic()
    assert list(source.readings()) == []  # nothing read yet: waiting here would deadlock the loop
    assert time.monotonic() - started < 1


def test_serve_is_off_without_a_port_and_serves_prometheus_text_with_one() -> None:
    assert metrics.serve(MetricsSettings(), "triage") is None
    server = metrics.serve(MetricsSettings(port=0), "triage")
    assert server is not None
    try:
        metrics.handoff("triage", "triage", "handled")
        resp = httpx.get(server.url, timeout=5)
        assert resp.status_code == 200
        names = {f.name for f in text_string_to_metric_families(resp.text)}
        assert {"pagerpatch_handoffs", "pagerpatch_handling_seconds", "process_cpu_seconds"} <= names
    finally:
        server.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=2)

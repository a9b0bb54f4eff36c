"""Prometheus metrics of every service: the definitions, the one-line recorders the kernel calls, the consumer-lag
collector (JetStream consumer info read when Prometheus scrapes) and a process's `/metrics` HTTP server.

Every name here is in the Grafana dashboard (deploy/grafana/pagerpatch.json) and docs/operations.md; a test checks
that the dashboard asks for nothing this module does not export.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pagerpatch.settings.metrics import MetricsSettings

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

HANDOFFS = Counter(
    "pagerpatch_handoffs",
    "Deliveries a stage finished, by outcome: handled (outputs stored and published), failed (nak'd for a retry), "
    "poison (dead-lettered at once), duplicate (already handled: acked, outputs re-published if needed)",
    ["service", "consumer", "outcome"],
)
HANDLING_SECONDS = Histogram(
    "pagerpatch_handling_seconds",
    "Time from a delivery's arrival to its ack or nak (validation, checkpoint, handler, store, publish)",
    ["service", "consumer"],
    buckets=_LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "pagerpatch_dead_letters",
    "Dead letters recorded, by consumer and kind (poison, max_deliveries)",
    ["consumer", "kind"],
)
BREAKER_STATE = Gauge(
    "pagerpatch_breaker_state",
    "Circuit breaker of an outbound dependency as of its last call: 0 closed, 1 half-open, 2 open",
    ["dependency"],
)
BREAKER_REJECTIONS = Counter(
    "pagerpatch_breaker_rejections",
    "Calls refused because the dependency's breaker was open",
    ["dependency"],
)
WEBHOOK_ANSWERS = Counter(
    "pagerpatch_webhook_answers",
    "HTTP answers of ingest's webhook endpoints, by provider and status code",
    ["provider", "status"],
)
WEBHOOK_SECONDS = Histogram(
    "pagerpatch_webhook_seconds",
    "Time to answer a webhook (verification, normalization, PubAck)",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
LLM_CALLS = Counter("pagerpatch_llm_calls", "Model calls, by agent, model and outcome", ["agent", "model", "outcome"])
LLM_TOKENS = Counter(
    "pagerpatch_llm_tokens",
    "Model tokens, by agent and kind (input, output, cache_read, cache_write)",
    ["agent", "kind"],
)
LLM_COST = Counter(
    "pagerpatch_llm_cost_usd", "Model cost in US dollars (the ledger's price table), by agent", ["agent"]
)
SANDBOX_RUNS = Counter(
    "pagerpatch_sandbox_runs",
    "Commands run in the sandbox, by backend and outcome (passed, failed, timed_out)",
    ["backend", "outcome"],
)
SANDBOX_SECONDS = Histogram(
    "pagerpatch_sandbox_run_seconds", "Wall-clock time of a sandboxed command", ["backend"], buckets=_LATENCY_BUCKETS
)

BREAKER_STATES = {"closed": 0.0, "half-opened": 1.0, "opened": 2.0}
_DEFINED = (
    HANDOFFS,
    HANDLING_SECONDS,
    DEAD_LETTERS,
    BREAKER_STATE,
    BREAKER_REJECTIONS,
    WEBHOOK_ANSWERS,
    WEBHOOK_SECONDS,
    LLM_CALLS,
    LLM_TOKENS,
    LLM_COST,
    SANDBOX_RUNS,
    SANDBOX_SECONDS,
)


def handoff(service: str, consumer: str, outcome: str) -> None:
    HANDOFFS.labels(service, consumer, outcome).inc()


def handling_time(service: str, consumer: str, seconds: float) -> None:
    HANDLING_SECONDS.labels(service, consumer).observe(seconds)


def dead_letter(consumer: str, kind: str) -> None:
    DEAD_LETTERS.labels(consumer, kind).inc()


def breaker_state(dependency: str, state: str) -> None:
    BREAKER_STATE.labels(dependency).set(BREAKER_STATES.get(state, 0.0))
    if state == "opened":
        BREAKER_REJECTIONS.labels(dependency)  # the series exists (at 0) once a breaker has opened


def breaker_rejected(dependency: str) -> None:
    BREAKER_REJECTIONS.labels(dependency).inc()


def webhook_answer(provider: str, status: int, seconds: float) -> None:
    WEBHOOK_ANSWERS.labels(provider, str(status)).inc()
    WEBHOOK_SECONDS.labels(provider).observe(seconds)


def llm_call(agent: str, model: str, outcome: str, usage: Any, cost_usd: float) -> None:
    """One model call as the ledger records it (`usage`: `{input,output,cache_read,cache_write}_tokens` counts)."""
    LLM_CALLS.labels(agent, model, outcome).inc()
    for kind in ("input", "output", "cache_read", "cache_write"):
        n = int(getattr(usage, f"{kind}_tokens", 0) or 0)
        if n:
            LLM_TOKENS.labels(agent, kind).inc(n)
    if cost_usd:
        LLM_COST.labels(agent).inc(cost_usd)


def sandbox_run(backend: str, *, passed: bool, timed_out: bool, seconds: float) -> None:
    outcome = "timed_out" if timed_out else "passed" if passed else "failed"
    SANDBOX_RUNS.labels(backend, outcome).inc()
    SANDBOX_SECONDS.labels(backend).observe(seconds)


# ---------------------------------------------------------------------------------------------- consumer lag

# What a lag source reads: (stream, durable, info) with info the JetStream ConsumerInfo (num_pending, ...).
Reader = Callable[[], Awaitable[Sequence[tuple[str, str, Any]]]]


@dataclass
class LagSource:
    """The consumers of one running service, read on its own event loop (the NATS client lives there)."""

    read: Reader
    loop: asyncio.AbstractEventLoop
    timeout_s: float = 2.0
    cache_s: float = 5.0
    last: Sequence[tuple[str, str, Any]] = ()
    read_at: float = field(default=-1e18)
    ok: bool = False

    def readings(self) -> Sequence[tuple[str, str, Any]]:
        """Fresh readings, or the last ones when the cache is young, the server slow, or we are on its loop."""
        if time.monotonic() - self.read_at < self.cache_s:
            return self.last
        if _on_loop(self.loop) or self.loop.is_closed():
            return self.last  # blocking on our own loop would deadlock it; a scrape from a thread reads afresh
        future = asyncio.run_coroutine_threadsafe(_call(self.read), self.loop)
        try:
            self.last, self.ok = future.result(timeout=self.timeout_s), True
        except Exception as exc:  # a timeout, or the server's error: say so through pagerpatch_consumer_lag_up
            future.cancel()
            self.ok = False
            log.warning("consumer lag not read: %s", type(exc).__name__)
        self.read_at = time.monotonic()
        return self.last


async def _call(read: Reader) -> Sequence[tuple[str, str, Any]]:
    return await read()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop() is loop
    return False


class ConsumerLagCollector(Collector):
    """`pagerpatch_consumer_*` gauges, read from JetStream consumer info when scraped (one collector per process)."""

    def __init__(self) -> None:
        self._sources: list[LagSource] = []
        self._lock = threading.Lock()

    def add(self, source: LagSource) -> None:
        with self._lock:
            self._sources.append(source)

    def remove(self, source: LagSource) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._sources.remove(source)

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            sources = list(self._sources)
        families = self._families()
        pending, ack_pending, redelivered, waiting, up = families
        for source in sources:
            for stream, durable, info in source.readings():
                labels = [stream, durable]
                pending.add_metric(labels, float(info.num_pending or 0))
                ack_pending.add_metric(labels, float(info.num_ack_pending or 0))
                redelivered.add_metric(labels, float(info.num_redelivered or 0))
                waiting.add_metric(labels, float(info.num_waiting or 0))
                up.add_metric(labels, 1.0 if source.ok else 0.0)
        return families

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        labels = ["stream", "consumer"]
        return (
            GaugeMetricFamily(
                "pagerpatch_consumer_pending",
                "Messages on the stream not yet delivered to the consumer (lag)",
                labels=labels,
            ),
            GaugeMetricFamily(
                "pagerpatch_consumer_ack_pending", "Messages delivered and not yet acknowledged", labels=labels
            ),
            GaugeMetricFamily(
                "pagerpatch_consumer_redelivered", "Messages delivered more than once and not yet acked", labels=labels
            ),
            GaugeMetricFamily("pagerpatch_consumer_waiting", "Pull requests waiting for messages", labels=labels),
            GaugeMetricFamily(
                "pagerpatch_consumer_lag_up",
                "1 when the last consumer-info read answered in time, else 0",
                labels=labels,
            ),
        )


CONSUMER_LAG = ConsumerLagCollector()
REGISTRY.register(CONSUMER_LAG)


def jetstream_reader(js: Any, consumers: Sequence[tuple[str, str]]) -> Reader:
    """Reads consumer info of (stream, durable) pairs through a JetStream context (nats-py)."""

    async def read() -> Sequence[tuple[str, str, Any]]:
        infos = await asyncio.gather(*(js.consumer_info(stream, durable) for stream, durable in consumers))
        return [(s, d, info) for (s, d), info in zip(consumers, infos, strict=True)]

    return read


# ---------------------------------------------------------------------------------------------- /metrics server


@dataclass
class MetricsServer:
    """A process's `/metrics` endpoint (prometheus_client's threaded HTTP server) and its lag source."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread
    _lag: LagSource | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        if self._lag is not None:
            CONSUMER_LAG.remove(self._lag)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(settings: MetricsSettings, service: str, *, lag: Reader | None = None) -> MetricsServer | None:
    """Start `service`'s /metrics server when the settings give it a port (None otherwise).

    With `lag`, the service's consumers are reported through `pagerpatch_consumer_*`, read on the calling event loop.
    """
    port = settings.port_for(service)
    if port is None:
        return None
    server, thread = start_http_server(port, addr=settings.host)
    source = None
    if lag is not None:
        loop = asyncio.get_running_loop()
        source = LagSource(lag, loop, timeout_s=settings.lag_timeout_s, cache_s=settings.lag_cache_s)
        CONSUMER_LAG.add(source)
    bound = int(server.server_port)
    log.info("%s: metrics on http://%s:%d/metrics", service, settings.host, bound)
    return MetricsServer(settings.host, bound, server, thread, source)


def exposition() -> tuple[bytes, str]:
    """The process's metrics in Prometheus' text format, and its content type (for a server of our own)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def exported_series() -> set[str]:
    """Every series name this process exports, as PromQL names them (`_total`, `_bucket`, `_sum`, `_count`...)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for family in (*REGISTRY.collect(), *CONSUMER_LAG.describe()):
        if family.name.startswith("pagerpatch_"):
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def label_names() -> dict[str, tuple[str, ...]]:
    """Each family's label names, by family name (what a dashboard may group or filter on)."""
    names = {m._name: tuple(m._labelnames) for m in _DEFINED}
    names.update({f.name: ("stream", "consumer") for f in CONSUMER_LAG.describe()})
    return names

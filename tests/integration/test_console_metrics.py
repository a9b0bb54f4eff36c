"""The console and the services' metrics: its health page shows the breaker states the services' real /metrics
endpoints report (breakers live in the processes, never in the store), and it serves its own /metrics."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from pagerpatch.kernel import metrics
from pagerpatch.kernel.breakers import Breakers
from pagerpatch.kernel.errors import Transient
from pagerpatch.ops.embedded import free_port
from pagerpatch.settings import BusSettings, Settings
from pagerpatch.settings.metrics import MetricsSettings
from services.console.app import breaker_urls, create_app
from services.console.memory import MemoryBreakers, MemoryConsoleStore, MemoryEventBus, MemoryRuntime
from services.console.usecase import ConsoleDeps
from tests.integration.test_console_app import client, console_app, console_settings

pytestmark = pytest.mark.integration


async def _open_breaker(dependency: str) -> None:
    breakers = Breakers(threshold=1, reset_after_s=60)

    async def refused() -> None:
        raise ConnectionError("refused")

    with pytest.raises(Transient):
        await breakers.call(dependency, refused)


async def test_health_shows_breaker_states_from_the_services_metrics(
    nats_url: str, pool: asyncpg.Pool, js: JetStreamContext, tmp_path: Path
) -> None:
    from pagerpatch.kernel import bus

    await bus.setup(js, BusSettings())
    dependency = f"github-{time.monotonic_ns()}"
    await _open_breaker(dependency)  # recorded in this process's registry, which the server below exposes
    server = metrics.serve(MetricsSettings(port=0), "fixgen")
    assert server is not None
    silent = f"http://127.0.0.1:{free_port()}/metrics"  # nobody listens: the page says so and still renders
    try:
        settings = console_settings(nats_url, tmp_path, metrics_urls={"fixgen": server.url, "review": silent})
        async with console_app(settings, pool) as (app, _), client(app) as http:
            page = (await http.get("/health")).text
    finally:
        server.close()
    table = page[page.index('<table id="breakers">') : page.index("</table>", page.index('<table id="breakers">'))]
    row = table[table.index(dependency) - 40 : table.index("</tr>", table.index(dependency))]
    assert "<td>fixgen</td>" in row and "<td class=state>open</td>" in row
    opened = table.count("<td class=state>open</td>")  # this process's registry may hold other tests' breakers
    assert opened >= 1 and f"Breakers: {opened} open" in page
    assert "<td>review</td>" in table and f"{silent} did not answer: ConnectError" in table


async def test_health_says_where_breakers_are_when_no_endpoint_is_known() -> None:
    settings = Settings(database_url="postgresql://unused")
    deps = ConsoleDeps(cfg=settings.console, store=MemoryConsoleStore(), bus=MemoryEventBus(), runtime=MemoryRuntime(),
                       breakers=MemoryBreakers())  # fmt: skip
    app = create_app(settings)
    app.state.deps = deps
    async with client(app) as http:
        page = (await http.get("/health")).text
    assert "No service metrics endpoint is known" in page and "PAGERPATCH_CONSOLE_METRICS_URLS" in page


def test_pagerpatch_up_s_metrics_ports_are_where_the_console_reads_breakers() -> None:
    ports = {"triage": 9101, "fixgen": 9103, "console": 9107}
    settings = Settings(metrics=MetricsSettings(host="0.0.0.0", ports=ports))
    assert breaker_urls(settings) == {"fixgen": "http://127.0.0.1:9103/metrics",
                                      "triage": "http://127.0.0.1:9101/metrics"}  # fmt: skip
    given = {"review": "http://pp-review-metrics:9090/metrics"}
    assert breaker_urls(settings.model_copy(update={"console": settings.console.model_copy(
        update={"metrics_urls": given})})) == given  # fmt: skip
    assert breaker_urls(Settings(metrics=MetricsSettings(port=9090))) == {}  # one port for all: other hosts


async def test_the_console_serves_its_own_metrics(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://unused", home=tmp_path,
                        metrics=MetricsSettings(ports={"console": 0}))  # fmt: skip
    app = create_app(settings)
    app.state.deps = ConsoleDeps(cfg=settings.console, store=MemoryConsoleStore(), bus=MemoryEventBus(),
                                 runtime=MemoryRuntime())  # fmt: skip
    async with app.router.lifespan_context(app):
        server = app.state.metrics
        assert server is not None
        async with httpx.AsyncClient(timeout=5) as http:
            resp = await http.get(server.url)
        assert resp.status_code == 200
        names = {f.name for f in text_string_to_metric_families(resp.text)}
        assert {"process_cpu_seconds", "pagerpatch_handoffs"} <= names
    async with httpx.AsyncClient(timeout=2) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(server.url)  # stopped with the app
    app = create_app(Settings(database_url="postgresql://unused", home=tmp_path))
    app.state.deps = ConsoleDeps(cfg=settings.console, store=MemoryConsoleStore(), bus=MemoryEventBus(),
                                 runtime=MemoryRuntime())  # fmt: skip
    async with app.router.lifespan_context(app):
        assert app.state.metrics is None  # no port in the settings: no endpoint

"""Console service: a read-only web UI for people (docs/console.md). The ASGI app factory, the deps it runs on
(`bootstrap`) and the entry point. Loopback by default; bound anywhere else it refuses to start without a token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator

import asyncpg
import uvicorn
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from starlette.applications import Starlette

from pagerpatch.kernel import bus, metrics
from pagerpatch.kernel.logs import setup_logging
from pagerpatch.kernel.store import create_pool
from pagerpatch.settings import Settings, get_settings
from pagerpatch.settings.console import ConsoleSettings
from services.console import domain
from services.console.adapters import LocalRuntime, MetricsBreakers, NatsEventBus, PgConsoleStore
from services.console.handlers import routes
from services.console.usecase import ConsoleDeps

log = logging.getLogger(__name__)


class ConsoleRefused(RuntimeError):
    """The settings would expose the console without a token (or are otherwise unsafe)."""


def check(cfg: ConsoleSettings) -> None:
    problem = cfg.startup_problem()
    if problem:
        raise ConsoleRefused(problem)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app; connects to the bus and the database on start-up (tests may set `app.state.deps` instead)."""
    check(settings.console)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The console's own /metrics, like every service's (`metrics.port`, or `metrics.ports["console"]`).
        app.state.metrics = metrics.serve(settings.metrics, "console")
        try:
            async with _connected(app):
                yield
        finally:
            if app.state.metrics is not None:
                app.state.metrics.close()

    @contextlib.asynccontextmanager
    async def _connected(app: Starlette) -> AsyncIterator[None]:
        if getattr(app.state, "deps", None) is not None:
            yield
            return
        if not settings.nats_url or not settings.database_url:
            raise RuntimeError("NATS_URL and DATABASE_URL must be set for the console")
        pool = await create_pool(settings.database_url, max_size=5)
        nc = await bus.connect(settings.nats_url, "pagerpatch-console")
        broker = bus.make_broker(settings.nats_url, name="console")
        await broker.connect()
        app.state.deps = bootstrap(settings, pool, nc=nc, broker=broker)
        try:
            yield
        finally:
            await broker.stop()
            with contextlib.suppress(Exception):
                await nc.drain()
            await pool.close()

    return Starlette(routes=routes, lifespan=lifespan)


def bootstrap(settings: Settings, pool: asyncpg.Pool, *, nc: NatsClient, broker: NatsBroker) -> ConsoleDeps:
    """The real adapters around a connected pool, nats-py client (consumer info, tails) and broker (publishing)."""
    return ConsoleDeps(
        cfg=settings.console,
        store=PgConsoleStore(pool),
        bus=NatsEventBus(nc, broker, publish_timeout_s=settings.bus.publish_timeout_s),
        runtime=LocalRuntime(settings.state_dir),
        team=settings.team,
        breakers=MetricsBreakers(breaker_urls(settings)),
    )


def breaker_urls(settings: Settings) -> dict[str, str]:
    """The services' /metrics the health page reads breaker states from (docs/console.md)."""
    m = settings.metrics
    return domain.metrics_endpoints(settings.console.metrics_urls, m.host, m.ports)


def listen_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def main() -> None:
    settings = get_settings()
    setup_logging("console", settings.log_level)
    cfg = settings.console
    try:
        app = create_app(settings)
    except ConsoleRefused as exc:
        log.error("console refuses to start: %s", exc)
        sys.exit(2)
    sock = listen_socket(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    # Server-sent event streams never end on their own: a stop closes them after a short grace period.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        shown = f"[{host}]" if ":" in host else host
        log.info("console listening on http://%s:%d%s", shown, port, "" if cfg.token_value else " (no token)")
        await server.serve(sockets=[sock])

    asyncio.run(serve())

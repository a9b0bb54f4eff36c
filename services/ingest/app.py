"""Ingest service: the HTTP front door. The ASGI app factory, the deps it runs on (`bootstrap`) and the entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import asyncpg
import uvicorn
import uvloop
from faststream.nats import NatsBroker
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette

from pagerpatch.kernel import bus
from pagerpatch.kernel.logs import setup_logging
from pagerpatch.kernel.store import create_pool
from pagerpatch.kernel.telemetry import setup_tracing
from pagerpatch.settings import Settings, get_settings
from services.ingest import domain
from services.ingest.adapters import HttpSns, JetStreamPublisher, PgDeliveryLedger, prune_forever
from services.ingest.handlers import routes
from services.ingest.ports import SnsGateway
from services.ingest.settings import IngestConfig
from services.ingest.usecase import IngestDeps

log = logging.getLogger(__name__)

# The delivery-id ledger commits without waiting for the WAL flush: the durable copy of a delivery is its event in
# JetStream; a Postgres crash can forget the last claims/marks, which costs at most a duplicate past the stream's
# window, never a lost alert. Waiting for two fsyncs per webhook set a ~50 ms latency floor (bench/ingest.py).
LEDGER_SESSION = {"synchronous_commit": "off"}


def create_app(settings: Settings) -> Starlette:
    """The ASGI app; connects to the bus and the database on start-up (tests may set `app.state.deps` instead)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.nats_url or not settings.database_url:
            raise RuntimeError("NATS_URL and DATABASE_URL must be set for the ingest service")
        provider = setup_tracing("ingest", settings.telemetry, settings.state_dir)
        broker = bus.make_broker(settings.nats_url, name="ingest", tracer_provider=provider, pending_size=0)
        await broker.connect()
        pool = await create_pool(settings.database_url, server_settings=LEDGER_SESSION)
        sns = HttpSns(ttl_s=settings.ingest.sns_certificate_ttl_s)
        tracing = provider if settings.telemetry.exporter != "none" else None
        deps = app.state.deps = bootstrap(settings, pool, broker=broker, sns=sns, tracer_provider=tracing)
        assert isinstance(deps.deliveries, PgDeliveryLedger)
        pruner = asyncio.create_task(prune_forever(deps.deliveries, deps.config.edge.delivery_retention_s))
        _log_exposure(deps.config)
        try:
            yield
        finally:
            pruner.cancel()
            await sns.aclose()
            await broker.stop()
            await pool.close()

    return Starlette(routes=routes, lifespan=lifespan)


def bootstrap(
    settings: Settings,
    pool: asyncpg.Pool,
    *,
    broker: NatsBroker,
    sns: SnsGateway,
    clock: Callable[[], datetime] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> IngestDeps:
    """The real adapters around a connected pool and broker (the edge publishes, so it needs the bus too)."""
    config = IngestConfig.from_settings(settings)
    return IngestDeps(
        config=config,
        publisher=JetStreamPublisher(broker, config.publish_timeout_s, tracer_provider),
        deliveries=PgDeliveryLedger(pool),
        sns=sns,
        **({"clock": clock} if clock else {}),
    )


def _log_exposure(config: IngestConfig) -> None:
    """Say which providers are refused for want of a secret and which are open without one (never the secrets)."""
    opened, missing = domain.exposure(config)
    if opened:
        log.warning(
            "ingest: %s accepted WITHOUT verification (ingest.open_providers; local use only)", ", ".join(opened)
        )
    if missing:
        log.info("ingest: no secret configured for %s: those webhooks are refused (401)", ", ".join(missing))


def listen_socket(host: str, port: int) -> socket.socket:
    """The listening socket, with SO_REUSEPORT: several ingest processes on one host share the port (and the load)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Accepted sockets inherit this; without it small responses wait on delayed ACKs (~40 ms each).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def main() -> None:
    settings = get_settings()
    setup_logging("ingest", settings.log_level)
    cfg = IngestConfig.from_settings(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=cfg.host,
            port=cfg.port,
            log_level="warning",
            lifespan="on",
            access_log=False,
            backlog=2048,
        )
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        log.info("ingest listening on http://%s:%d", cfg.host, cfg.port)
        await server.serve(sockets=[listen_socket(cfg.host, cfg.port)])

    uvloop.run(serve())  # libuv event loop; uvicorn picks httptools for HTTP/1.1 parsing on its own

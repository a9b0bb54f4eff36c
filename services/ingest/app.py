"""Ingest service: the HTTP front door. Factory and entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from pagerpatch import bus
from pagerpatch.logs import setup_logging
from pagerpatch.settings import Settings, get_settings
from pagerpatch.store import create_pool
from pagerpatch.telemetry import setup_tracing
from services.ingest.handlers import IngestDeps, routes
from services.ingest.settings import IngestConfig

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app; connects to the bus and the database on start-up."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.nats_url or not settings.database_url:
            raise RuntimeError("NATS_URL and DATABASE_URL must be set for the ingest service")
        provider = setup_tracing("ingest", settings.telemetry, settings.state_dir)
        broker = bus.make_broker(settings.nats_url, name="ingest", tracer_provider=provider)
        await broker.connect()
        pool = await create_pool(settings.database_url)
        app.state.deps = IngestDeps(settings=settings, broker=broker, pool=pool)
        try:
            yield
        finally:
            await broker.stop()
            await pool.close()

    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    settings = get_settings()
    setup_logging("ingest", settings.log_level)
    cfg = IngestConfig.from_settings(settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=cfg.host, port=cfg.port, log_level="warning", lifespan="on")
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        log.info("ingest listening on http://%s:%d", cfg.host, cfg.port)
        await server.serve()

    asyncio.run(serve())

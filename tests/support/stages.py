"""A stage run as `pagerpatch run` starts it, for integration tests: streams set up, schema migrated, the
incident finish hook, and always stopped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from nats.js import JetStreamContext

from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel import bus, store
from pagerpatch.kernel.runtime import Bootstrap, RunningService, Service, start_service, stop_service
from pagerpatch.settings import Settings

D = TypeVar("D")


@asynccontextmanager
async def running_stage(
    service: Service[D], bootstrap: Bootstrap[D], settings: Settings, js: JetStreamContext
) -> AsyncIterator[RunningService]:
    """`service` consuming from nats-server with its dependencies on `settings.database_url`, until the block ends."""
    assert settings.database_url is not None
    await bus.setup(js, settings.bus)
    await store.migrate(settings.database_url)
    svc = await start_service(service, settings, bootstrap, finish=finish_handoff)
    try:
        yield svc
    finally:
        await stop_service(svc)

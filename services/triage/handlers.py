"""Triage handler (thin): decide the alert through the engine on the Postgres store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import AlertReceived
from services.triage import engine
from services.triage.deps import TriageDeps

service: Service[TriageDeps] = Service("triage")


@service.handler("triage", AlertReceived)
async def on_alert(event: AlertReceived, ctx: StageContext[TriageDeps]) -> Sequence[Event[Any]]:
    deps = ctx.deps
    result = await engine.triage(event, deps.store, deps.config, deps.hint, datetime.now(UTC))
    await deps.store.maybe_prune()
    return result.outputs

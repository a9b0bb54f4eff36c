"""Triage handler (thin): decide the alert through the engine on the Postgres store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pagerpatch.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import AlertReceived
from services.triage import engine
from services.triage.deps import TriageDeps

service: Service[TriageDeps] = Service("triage")


@service.handler("triage", AlertReceived)
async def on_alert(event: AlertReceived, ctx: StageContext[TriageDeps]) -> Sequence[Event[Any]]:
    store, hint = ctx.deps.bind(ctx.pool)
    result = await engine.triage(event, store, ctx.deps.config, hint, datetime.now(UTC))
    await store.maybe_prune()
    return result.outputs

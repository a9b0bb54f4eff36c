"""Triage handler (thin): the alert through the use case on the service's store; its outputs are the next events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pagerpatch.kernel.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import AlertReceived
from services.triage import usecase

if TYPE_CHECKING:  # app imports this module to build the service; the type is only needed by the checker
    from services.triage.app import TriageDeps

service: Service[TriageDeps] = Service("triage")


@service.handler("triage", AlertReceived)
async def on_alert(event: AlertReceived, ctx: StageContext[TriageDeps]) -> Sequence[Event[Any]]:
    """An alert in, its incident.opened or alert.suppressed out (the runtime stores, publishes and acks)."""
    deps = ctx.deps
    result = await usecase.handle_alert(event, deps.store, deps.config, deps.hint, datetime.now(UTC))
    return result.outputs

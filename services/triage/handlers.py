"""Triage handler: fingerprint, dedup against the live store, open the incident."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pagerpatch import repos
from pagerpatch.runtime import Service, StageContext
from schemas.envelope import Event
from schemas.events import (
    AlertReceived,
    AlertSuppressed,
    AlertSuppressedPayload,
    IncidentOpened,
    IncidentOpenedPayload,
    Severity,
)
from services.triage import adapters, logic
from services.triage.settings import TriageConfig

service: Service[TriageConfig] = Service("triage")


@service.handler("triage", AlertReceived)
async def on_alert(event: AlertReceived, ctx: StageContext[TriageConfig]) -> Sequence[Event[Any]]:
    alert = event.payload
    fp = logic.fingerprint(alert)
    at = alert.occurred_at or event.occurred_at or datetime.now(UTC)
    incident_id = uuid.uuid5(event.event_id, "triage:incident")
    async with ctx.pool.acquire() as conn, conn.transaction():
        opened_before = await adapters.opened_incident(conn, incident_id)
        if opened_before is not None:  # this alert opened it; the handler crashed before its checkpoint
            severity, repo_name, reasons = opened_before
            return [_opened(event, fp, incident_id, Severity(severity), repo_name, reasons)]
        live = await adapters.live_incident(conn, fp)
        verdict = logic.dedup(live, datetime.now(UTC), ctx.deps.window)
        if verdict.duplicate_of is None and alert.status == "firing":
            sev = logic.severity(alert.severity_hint, ctx.deps.tiers.get(alert.service), ctx.deps.default_severity)
            repo = await repos.for_service(ctx.settings, conn, alert.service)
            reasons = [verdict.reason, *sev.reasons]
            opened = await adapters.open_incident(
                conn, incident_id=incident_id, fingerprint=fp, title=alert.title, service=alert.service,
                severity=sev.severity.value, repo=repo.name if repo else None, team=event.team,
                reasons=reasons, at=at,
            )  # fmt: skip
            if opened:
                return [_opened(event, fp, incident_id, sev.severity, repo.name if repo else None, reasons)]
            live = await adapters.live_incident(conn, fp)  # another replica opened it a moment ago
            if live is None:
                raise RuntimeError("incident insert conflicted but no live incident was found")
            verdict = logic.DedupVerdict(live.id, f"duplicate of live incident {live.id} (concurrent open)")
        if verdict.duplicate_of is None:  # a resolution with nothing live to resolve
            return [
                event.derive(
                    AlertSuppressed,
                    AlertSuppressedPayload(fingerprint=fp, reason="noise", reasons=["resolution of no live incident"]),
                    stage="triage",
                )
            ]
        dup_id = uuid.UUID(verdict.duplicate_of)
        count = await adapters.count_occurrence(conn, dup_id, event.event_id, at, alert.title)
    return [
        event.derive(
            AlertSuppressed,
            AlertSuppressedPayload(
                fingerprint=fp, reason="duplicate", incident_id=dup_id, occurrences=count, reasons=[verdict.reason]
            ),
            stage="triage",
            incident_id=dup_id,
        )
    ]


def _opened(
    event: AlertReceived,
    fp: str,
    incident_id: uuid.UUID,
    severity: Severity,
    repo: str | None,
    reasons: list[str],
) -> IncidentOpened:
    alert = event.payload
    return event.derive(
        IncidentOpened,
        IncidentOpenedPayload(
            fingerprint=fp,
            title=alert.title,
            service=alert.service,
            severity=severity,
            repo=repo,
            description=alert.description,
            stack_trace=alert.stack_trace,
            commit=alert.commit,
            labels=dict(alert.labels),
            reasons=[r[:500] for r in reasons],
        ),
        stage="triage",
        incident_id=incident_id,
    )

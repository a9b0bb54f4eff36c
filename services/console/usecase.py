"""The console's use cases: each page's reads assembled into a view model, the live tail, and an approver's decision
(the CLI's rules: the incident must wait at the approval gate; published as `approval.decided`, channel "api")."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pagerpatch.cli.bus import event_summary
from pagerpatch.cli.report import commit_line, fix_lines, latest, risk_of, run_line, validated_fix
from pagerpatch.settings.console import ConsoleSettings
from schemas.envelope import derived_id
from schemas.events import ApprovalDecided, ApprovalDecidedPayload, DiagnosisReady, FixFailed, RiskAssessment
from schemas.investigation import InvestigationReport
from services.console import domain
from services.console.domain import Access, BreakerReading, CostLedger, DiffFile, IncidentFilter
from services.console.ports import (
    BreakerSource,
    ConsoleStore,
    DeadLetterCount,
    EventBus,
    IncidentRecord,
    IncidentRow,
    Runtime,
    StageActivity,
    TailedEvent,
    UpInfo,
)

log = logging.getLogger(__name__)

STAGE = "console"
INCIDENTS_SHOWN = 200


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleDeps:
    cfg: ConsoleSettings
    store: ConsoleStore
    bus: EventBus
    runtime: Runtime
    team: str | None = None
    clock: Callable[[], datetime] = _now
    breakers: BreakerSource | None = None  # the services' /metrics, where their breaker states are


# ------------------------------------------------------------------ incidents


@dataclass(frozen=True)
class IncidentsView:
    rows: list[IncidentRow]
    filter: IncidentFilter
    choices: dict[str, list[str]]
    now: datetime


async def incidents(deps: ConsoleDeps, f: IncidentFilter) -> IncidentsView:
    rows = await deps.store.incidents(f, INCIDENTS_SHOWN)
    return IncidentsView(rows, f, await deps.store.choices(), deps.clock())


@dataclass(frozen=True)
class Diagnosis:
    suspect: str | None
    root_cause: str
    confidence: float
    strategy: str
    evidence: list[str]
    tried: list[str]
    report: InvestigationReport | None = None
    fallback_reason: str | None = None


@dataclass(frozen=True)
class IncidentPage:
    record: IncidentRecord
    now: datetime
    diagnosis: Diagnosis | None = None
    fix: list[str] = field(default_factory=list)  # `incidents show`'s lines: proof, tests before/after, ...
    diff: list[DiffFile] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    risk: RiskAssessment | None = None
    can_decide: bool = False
    csrf: str = ""


def _diagnosis(record: IncidentRecord) -> Diagnosis | None:
    found = latest(record.outputs, DiagnosisReady)
    if found is None:
        return None
    d = found.payload
    evidence = []
    for ev in d.evidence:
        where = f"{ev.file}:{ev.line}" + (f" in {ev.function}" if ev.function else "")
        by = f" (last changed by {ev.commit[:12]})" if ev.commit else ""
        evidence.append(f"{where}{by}" + (f": {ev.note}" if ev.note else ""))
    suspect = commit_line(d.suspect_commit) if d.suspect_commit else None
    return Diagnosis(suspect, d.root_cause, d.confidence, d.strategy, evidence, list(d.tried), d.report,
                     d.fallback_reason)  # fmt: skip


async def incident(deps: ConsoleDeps, ref: str, access: Access) -> IncidentPage | None:
    record = await deps.store.incident(ref)
    if record is None:
        return None
    fix = validated_fix(record.outputs)
    failed = latest(record.outputs, FixFailed)
    failed_lines = []
    if failed is not None:
        failed_lines.append(f"fix failed: {failed.payload.reason}")
        if failed.payload.tests is not None:
            failed_lines.append("tests: " + run_line(failed.payload.tests))
        failed_lines.extend(f"tried: {t}" for t in failed.payload.tried)
    pending = record.approval is not None and record.approval.status == "pending"
    approver = access.approver
    secret = deps.cfg.approvers.get(approver) if approver else None
    return IncidentPage(
        record=record,
        now=deps.clock(),
        diagnosis=_diagnosis(record),
        fix=fix_lines(fix) if fix else [],
        diff=domain.render_diff(fix.patch) if fix else [],
        failed=failed_lines,
        risk=risk_of(record.outputs),
        can_decide=pending and approver is not None,
        csrf=domain.csrf_token(secret.get_secret_value()) if secret is not None else "",
    )


# ------------------------------------------------------------------ approvals


@dataclass(frozen=True)
class Decided:
    status: int  # the HTTP status the handler answers with
    message: str
    event_id: str | None = None
    duplicate: bool = False


async def decide(
    deps: ConsoleDeps, ref: str, decision: Literal["approve", "reject"], reason: str, access: Access
) -> Decided:
    """An approver's decision on a fix waiting at the gate, as `pagerpatch approve/reject` makes it.

    One `approval.decided` per pending approval: its id derives from the approval request, so a second click (or a
    second approver within the stream's duplicate window) is dropped by the stream and said to be a duplicate.
    """
    if not access.allowed:
        return Decided(401, "sign in first")
    if access.approver is None:
        return Decided(403, "only approvers (console.approvers) may approve or reject; sign in with your own token")
    record = await deps.store.incident(ref)
    if record is None:
        return Decided(404, f"no incident matches {ref!r}")
    inc, approval = record.incident, record.approval
    if approval is None:
        return Decided(409, f"incident {inc.id} is not waiting for approval (state: {inc.state})")
    if approval.status != "pending":
        return Decided(409, f"incident {inc.id} was already {approval.status}")
    event = ApprovalDecided.create(
        ApprovalDecidedPayload(decision=decision, decided_by=access.approver, reason=reason[:500], channel="api"),
        source=STAGE,
        incident_id=inc.id,
        team=deps.team or record.team,
        causation_id=approval.request_event_id,
        event_id=derived_id(approval.request_event_id, STAGE, ApprovalDecided.TYPE),
    )
    duplicate = await deps.bus.publish(event)
    await deps.store.audit(
        actor=access.approver,
        action=f"console.{decision}",
        incident_id=inc.id,
        details={"reason": reason[:500], "channel": "api", "event_id": str(event.event_id), "duplicate": duplicate},
    )
    log.info("console: %s by %s for %s (event %s%s)", decision, access.approver, inc.id, event.event_id,
             ", duplicate" if duplicate else "")  # fmt: skip
    if duplicate:
        return Decided(200, "a decision on this fix was already sent; review settles it", str(event.event_id), True)
    return Decided(202, f"{decision} sent for {inc.id}; review settles it", str(event.event_id))


# ------------------------------------------------------------------ live events


def tailed_view(ev: TailedEvent) -> dict[str, Any]:
    """What the browser gets for one event: its place in the stream, type, incident and one line of summary."""
    try:
        data = json.loads(ev.data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return {
            "seq": ev.seq,
            "subject": ev.subject,
            "type": ev.subject,
            "summary": ev.data[:200].decode("utf-8", "replace"),
        }
    return {
        "seq": ev.seq,
        "subject": ev.subject,
        "type": str(data.get("type") or ev.subject),
        "occurred_at": str(data.get("occurred_at") or "")[:23],
        "incident_id": data.get("incident_id"),
        "source": data.get("source"),
        "team": data.get("team"),
        "summary": event_summary(data),
    }


async def live_events(deps: ConsoleDeps, subject: str, backlog: int, keepalive_s: float = 15.0) -> AsyncIterator[str]:
    """Server-sent event frames: one `data:` frame per event, a comment as keepalive."""
    async for ev in deps.bus.tail(subject, min(max(backlog, 0), deps.cfg.events_shown), keepalive_s):
        if ev is None:
            yield ": keepalive\n\n"
            continue
        yield f"id: {ev.seq}\nevent: pagerpatch\ndata: {json.dumps(tailed_view(ev), default=str)}\n\n"


# ------------------------------------------------------------------ health and costs


@dataclass(frozen=True)
class HealthView:
    consumers: list[tuple[domain.ConsumerLag, str]]
    bus_error: str | None
    stages: list[StageActivity]
    dead_letters: list[DeadLetterCount]
    up: UpInfo | None
    now: datetime
    breakers: list[BreakerReading] = field(default_factory=list)
    breaker_endpoints: dict[str, str] = field(default_factory=dict)  # {}: no service's /metrics is known

    @property
    def dead_waiting(self) -> int:
        return sum(d.waiting for d in self.dead_letters)


async def health(deps: ConsoleDeps) -> HealthView:
    try:
        lags = await deps.bus.consumer_lag()
        bus_error = None
    except Exception as exc:  # the page still shows what the store knows
        lags, bus_error = [], f"{type(exc).__name__}: {exc}"
    return HealthView(
        consumers=[(c, domain.lag_status(c)) for c in lags],
        bus_error=bus_error,
        stages=await deps.store.stage_activity(),
        dead_letters=await deps.store.dead_letters(),
        up=await deps.runtime.up(),
        now=deps.clock(),
        breakers=await deps.breakers.breakers() if deps.breakers is not None else [],
        breaker_endpoints=deps.breakers.endpoints() if deps.breakers is not None else {},
    )


@dataclass(frozen=True)
class CostsView:
    days: int
    ledger: CostLedger
    chart: list[domain.Bar]


async def costs(deps: ConsoleDeps, days: int) -> CostsView:
    days = min(max(days, 1), 366)
    ledger = domain.aggregate_costs(await deps.store.cost_rows(days))
    points = domain.daily_points(ledger.by_day, deps.clock().astimezone(UTC).date(), days)
    return CostsView(days, ledger, domain.bars(points, height=150))

"""The console over a real nats-server and Postgres: token rules, the pages' content and filters, an approver's
decision (published once, audited, refused to everyone else) and server-sent events from a live tail."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
import uvicorn
from nats.js import JetStreamContext
from starlette.applications import Starlette

from pagerpatch.incidents import finish_handoff
from pagerpatch.incidents.grouping import open_incident
from pagerpatch.kernel import bus
from pagerpatch.kernel.checkpoints import Checkpoints
from pagerpatch.llm.ledger import CallRecord, PgLedger
from pagerpatch.llm.pricing import Usage
from pagerpatch.settings import BusSettings, Settings
from pagerpatch.settings.console import ConsoleSettings
from schemas import streams, subjects
from schemas.events import (
    AlertReceived,
    AlertReceivedPayload,
    ApprovalRequested,
    ApprovalRequestedPayload,
    DiagnosisReady,
    DiagnosisReadyPayload,
    Evidence,
    FixFailed,
    FixFailedPayload,
    FixValidated,
    IncidentOpened,
    IncidentOpenedPayload,
    RiskAssessment,
    RiskLevel,
    Severity,
    SuspectCommit,
)
from schemas.investigation import Claim, Grounding, InvestigationReport
from services.console.app import ConsoleRefused, bootstrap, create_app, listen_socket
from services.console.handlers import COOKIE
from services.console.usecase import ConsoleDeps
from services.review.adapters import PgApprovals
from tests.integration.test_runtime import stream_events
from tests.support.review import fix_payload

pytestmark = pytest.mark.integration

BASE, SUSPECT = "b" * 40, "c" * 40
VIEWER, DANA = "viewer-token-123", "dana-token-456"
PATCH = """diff --git a/shop/pricing.py b/shop/pricing.py
--- a/shop/pricing.py
+++ b/shop/pricing.py
@@ -10,3 +10,3 @@ def lookup(code):
     table = load()
-    return table[code]
+    return table.get(code)
     # end
"""


@dataclass(frozen=True)
class Seeded:
    incident_id: uuid.UUID
    request_event_id: uuid.UUID | None


async def seed_incident(
    pool: asyncpg.Pool, *, service: str = "checkout", team: str = "payments", title: str = "KeyError in checkout",
    pending: bool = True, cost: float = 0.0123,
) -> Seeded:  # fmt: skip
    """An incident through triage, diagnosis (with an investigation report), fixgen and review, stored the way the
    stages store it (checkpoint outputs and timeline through `finish_handoff`), waiting for approval when `pending`
    (else its fix failed), with one model call in the ledger."""
    iid = uuid.uuid4()
    reasons = [f"error rate of {service} above 5%", "stack trace points at shop/pricing.py"]
    async with pool.acquire() as conn:
        await open_incident(conn, incident_id=iid, group_key=f"g-{iid}", title=title, service=service, severity="P1",
                            repo="shop", team=team, reasons=reasons,
                            opened_at=datetime.now(UTC) - timedelta(minutes=7))  # fmt: skip
    opened = IncidentOpened.create(
        IncidentOpenedPayload(fingerprint=f"g-{iid}", title=title, service=service, severity=Severity.P1, repo="shop",
                              reasons=reasons),
        source="triage", incident_id=iid, team=team,
    )  # fmt: skip
    report = InvestigationReport(
        summary="The coupon lookup indexes the table directly.", root_cause="KeyError on an unknown coupon",
        evidence=[Claim(file="shop/pricing.py", line=11, symbol="lookup", commit=SUSPECT[:12], note="direct index")],
        confidence=0.8, grounding=Grounding(checked=6, rejected=2, rejected_by_kind={"line": 1, "quote": 1}),
    )  # fmt: skip
    diagnosis = DiagnosisReadyPayload(
        repo="shop", base_commit=BASE, root_cause="KeyError on an unknown coupon", confidence=0.9,
        suspect_commit=SuspectCommit(sha=SUSPECT, subject="pricing: simplify coupon lookup"),
        evidence=[Evidence(file="shop/pricing.py", line=11, function="lookup", commit=SUSPECT, note="raises here")],
        strategy="stacktrace-blame", report=report,
    )  # fmt: skip
    diag = opened.derive(DiagnosisReady, diagnosis, stage="diagnosis")
    await _finish(pool, "diagnosis", opened, diag)
    requested_id = None
    if pending:
        fix = diag.derive(FixValidated, fix_payload(
            base_commit=BASE, patch=PATCH, files_changed=["shop/pricing.py"], lines_added=1, lines_removed=1,
            proof="proved", strategy="revert-and-test", summary="12 passed"), stage="fixgen")  # fmt: skip
        await _finish(pool, "fixgen", diag, fix)
        risk = RiskAssessment(level=RiskLevel.HIGH, score=50, reasons=["touches protected path(s): shop/pricing.py"])
        asked = fix.derive(
            ApprovalRequested,
            ApprovalRequestedPayload(
                risk=risk, repo="shop", summary="Revert — 12 passed", files_changed=["shop/pricing.py"]
            ),
            stage="review",
        )
        await _finish(pool, "review", fix, asked)
        await PgApprovals(pool).request(iid, risk=risk, fix=fix.payload, event_id=asked.event_id)
        requested_id = asked.event_id
    else:
        failed = diag.derive(FixFailed, FixFailedPayload(repo="shop", reason="the revert conflicts", attempts=1),
                             stage="fixgen")  # fmt: skip
        await _finish(pool, "fixgen", diag, failed)
    await PgLedger(pool).record(CallRecord(
        agent="investigator", step="investigate", team=team, incident_id=str(iid), provider="anthropic",
        model="claude-test", usage=Usage(input_tokens=1200, output_tokens=300), cost_usd=cost, latency_ms=850,
        outcome="ok"))  # fmt: skip
    return Seeded(iid, requested_id)


async def _finish(pool: asyncpg.Pool, stage: str, event: Any, output: Any) -> None:
    checkpoints = Checkpoints(pool, stage)
    await checkpoints.begin(event)
    await finish_handoff(checkpoints, event, [output])


def console_settings(nats_url: str, home: Path, **console: Any) -> Settings:
    return Settings(
        nats_url=nats_url, database_url="postgresql://unused", home=home, console=ConsoleSettings(**console)
    )


@contextlib.asynccontextmanager
async def console_app(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[tuple[Starlette, ConsoleDeps]]:
    """The console's app on real adapters (its lifespan is skipped: the deps are set here)."""
    assert settings.nats_url is not None
    nc = await bus.connect(settings.nats_url, "console-test")
    broker = bus.make_broker(settings.nats_url, name="console-test")
    await broker.connect()
    app = create_app(settings)
    app.state.deps = bootstrap(settings, pool, nc=nc, broker=broker)
    try:
        yield app, app.state.deps
    finally:
        await broker.stop()
        await nc.drain()


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """A real uvicorn on a free loopback port, in this event loop (server-sent events need a real server)."""
    sock = listen_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


def client(app: Starlette, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8081", **kw)


@pytest.fixture
async def bus_ready(js: JetStreamContext) -> JetStreamContext:
    await bus.setup(js, BusSettings())
    return js


# ------------------------------------------------------------------ token rules


async def test_the_console_refuses_to_start_off_loopback_without_a_token(nats_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConsoleRefused, match="PAGERPATCH_CONSOLE_TOKEN"):
        create_app(console_settings(nats_url, tmp_path, host="0.0.0.0"))
    create_app(console_settings(nats_url, tmp_path, host="0.0.0.0", token=VIEWER))  # with one it starts


async def test_with_a_token_every_page_requires_it(nats_url: str, pool: asyncpg.Pool, bus_ready, tmp_path) -> None:
    settings = console_settings(nats_url, tmp_path, host="0.0.0.0", token=VIEWER, approvers={"dana": DANA})
    async with console_app(settings, pool) as (app, _), client(app) as http:
        for path in ("/", "/incidents/rows", "/events", "/health", "/costs", f"/incidents/{uuid.uuid4()}"):
            resp = await http.get(path)
            assert resp.status_code == 401, path
            assert resp.json()["error"].startswith("a console token is required")
            page = await http.get(path, headers={"accept": "text/html"})
            assert page.status_code == 401 and 'name="token"' in page.text  # the sign-in form
            assert (await http.get(path, headers={"authorization": "Bearer wrong"})).status_code == 401
            assert (await http.get(path, headers={"authorization": f"Bearer {VIEWER}"})).status_code in (200, 404)
        assert (await http.get("/events/stream")).status_code == 401
        assert (await http.get("/healthz")).status_code == 200  # the probe needs nothing

        link = await http.get("/costs?days=7&token=" + VIEWER)  # a sign-in link: cookie, then the URL without it
        assert link.status_code == 303 and link.headers["location"] == "/costs?days=7"
        assert link.cookies[COOKIE] == VIEWER and "samesite=strict" in link.headers["set-cookie"].lower()
        async with client(app, cookies={COOKIE: VIEWER}) as signed_in:
            assert (await signed_in.get("/costs")).status_code == 200
        assert (await http.get("/?token=nope", headers={"accept": "text/html"})).status_code == 401

        signed = await http.post("/login", content=f"token={DANA}&next=/health",
                                 headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert signed.status_code == 303 and signed.headers["location"] == "/health" and signed.cookies[COOKIE] == DANA


async def test_an_open_loopback_console_refuses_foreign_host_names(nats_url, pool, bus_ready, tmp_path) -> None:
    async with console_app(console_settings(nats_url, tmp_path), pool) as (app, _), client(app) as http:
        assert (await http.get("/")).status_code == 200  # no token on loopback: looking needs nothing
        assert (await http.get("/", headers={"host": "attacker.example"})).status_code == 421  # DNS rebinding
        assert (await http.get("/", headers={"host": "localhost:8081"})).status_code == 200


# ------------------------------------------------------------------ pages


async def test_incidents_are_listed_with_their_facts_and_filtered(nats_url, pool, bus_ready, tmp_path) -> None:
    pay = await seed_incident(pool, service="checkout", team="payments", title="KeyError in checkout")
    cart = await seed_incident(pool, service="cart", team="web", title="TimeoutError in cart", pending=False,
                               cost=1.5)  # fmt: skip
    await pool.execute(
        """INSERT INTO pull_requests (incident_id, repo, provider, branch, head_commit, title, body, url)
           VALUES ($1, 'shop', 'local', 'pagerpatch/fix', $2, 't', 'b', 'https://git.example/shop/pull/7')""",
        cart.incident_id, SUSPECT,
    )  # fmt: skip
    async with console_app(console_settings(nats_url, tmp_path), pool) as (app, _), client(app) as http:
        page = (await http.get("/")).text
        assert str(pay.incident_id)[:8] in page and str(cart.incident_id)[:8] in page
        assert "awaiting_approval" in page and "revert-and-test" in page and "$0.0123" in page
        assert "failed" in page and "stacktrace-blame" in page and "$1.50" in page
        assert 'href="https://git.example/shop/pull/7"' in page and "7m" in page  # PR link, age
        only_web = (await http.get("/?team=web")).text
        assert str(cart.incident_id)[:8] in only_web and str(pay.incident_id)[:8] not in only_web
        rows = (await http.get("/incidents/rows?service=checkout&state=awaiting_approval")).text
        assert str(pay.incident_id)[:8] in rows and str(cart.incident_id)[:8] not in rows
        assert "no incidents match" in (await http.get("/incidents/rows?state=resolved")).text


async def test_the_incident_page_shows_the_whole_story(nats_url, pool, bus_ready, tmp_path) -> None:
    seeded = await seed_incident(pool)
    async with console_app(console_settings(nats_url, tmp_path), pool) as (app, _), client(app) as http:
        page = (await http.get(f"/incidents/{str(seeded.incident_id)[:13]}")).text  # a prefix works
    assert "error rate of checkout above 5%" in page  # triage reasons
    assert "pricing: simplify coupon lookup" in page and "shop/pricing.py:11 in lookup" in page  # diagnosis
    assert "grounding: 6 checked, 2 rejected (line 1, quote 1)" in page  # the investigation report
    assert '<tr class="del"><td class="ln">11</td><td class="ln"></td><td>-    return table[code]</td>' in page
    assert '<tr class="add"><td class="ln"></td><td class="ln">11</td><td>+    return table.get(code)</td>' in page
    assert "proof: proved" in page and "tests with the fix: passed" in page  # the CLI's fix lines
    assert "HIGH (score 50)" in page and "approval: <strong>pending</strong>" in page
    assert "claude-test" in page and "1,200" in page and "1 call(s), 1,500 tokens, $0.0123" in page
    for event_type in ("incident.opened", "diagnosis.ready", "fix.validated", "approval.requested"):
        assert f"<td>{event_type}</td>" in page  # the timeline
    assert 'id="decision"' not in page  # no buttons for someone who is not an approver


async def test_health_shows_consumers_dead_letters_and_stages(nats_url, pool, bus_ready, tmp_path) -> None:
    await seed_incident(pool)
    await pool.execute("""INSERT INTO dead_letters (consumer, stream, stream_seq, subject, reason, kind)
                          VALUES ('triage', 'PAGERPATCH', 41, 'pagerpatch.alert.received', 'bad', 'poison')""")
    nc = await nats.connect(nats_url)
    await nc.jetstream().publish(subjects.ALERT_RECEIVED, b"{}", stream=streams.EVENTS_STREAM)  # lag for triage
    await nc.drain()
    async with console_app(console_settings(nats_url, tmp_path), pool) as (app, _), client(app) as http:
        page = (await http.get("/health")).text
    triage_row = page[page.index("<td>triage</td>") : page.index("</tr>", page.index("<td>triage</td>"))]
    assert "<td class=num>1</td>" in triage_row and "no reader" in triage_row  # 1 pending, nobody pulling
    assert "Dead letters: 1 waiting" in page
    assert "<td>fixgen</td>" in page and "<td>review</td>" in page  # stage heartbeats from checkpoints
    assert "No service metrics endpoint is known" in page  # breakers: test_console_metrics.py reads real ones


async def test_costs_per_agent_team_and_day_with_a_chart(nats_url, pool, bus_ready, tmp_path) -> None:
    await seed_incident(pool, team="payments", cost=0.25)
    await seed_incident(pool, team="web", cost=0.75)
    async with console_app(console_settings(nats_url, tmp_path), pool) as (app, _), client(app) as http:
        page = (await http.get("/costs?days=7")).text
    assert "2 model calls" in page and "$1.00" in page
    assert "<td>investigator</td><td class=num>2</td>" in page
    web = page.index("<td>web</td>")
    assert page.index("<td>payments</td>") > web  # most expensive team first
    assert page.count("<rect ") == 7 and 'id="cost-chart"' in page  # a bar per day of the period
    assert page.count('height="150.0"') == 1 and "max $1.00/day" in page  # today's: the tallest


def _alert() -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title="boom"), source="test")


# ------------------------------------------------------------------ approvals


async def test_an_approval_is_published_once_audited_and_refused_to_others(nats_url, pool, bus_ready, tmp_path):
    seeded = await seed_incident(pool)
    iid = seeded.incident_id
    settings = console_settings(nats_url, tmp_path, token=VIEWER, approvers={"dana": DANA})
    form = {"content-type": "application/x-www-form-urlencoded"}
    async with console_app(settings, pool) as (app, _), client(app) as http:
        url = f"/incidents/{iid}/decision"
        assert (await http.post(url, content="decision=approve")).status_code == 401
        viewer = await http.post(url, content="decision=approve", headers={"authorization": f"Bearer {VIEWER}", **form})
        assert viewer.status_code == 403 and "only approvers" in viewer.json()["message"]
        async with client(app, cookies={COOKIE: DANA}) as browser:
            forged = await browser.post(url, content="decision=approve&csrf=x", headers=form)
            assert forged.status_code == 403  # a cookie alone (a cross-site form) does not decide
            assert await stream_events(bus_ready, subjects.APPROVAL_DECIDED) == []
            page = (await browser.get(f"/incidents/{iid}")).text
            csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            done = await browser.post(url, content=f"decision=approve&reason=looks+right&csrf={csrf}", headers=form)
        assert done.status_code == 303 and done.headers["location"].startswith(f"/incidents/{iid}?notice=approve")
        again = await http.post(url, json={"decision": "reject"}, headers={"authorization": f"Bearer {DANA}"})
        assert again.status_code == 200 and again.json()["duplicate"] is True

    sent = [json.loads(m) for m in await stream_events(bus_ready, subjects.APPROVAL_DECIDED)]
    assert len(sent) == 1
    assert sent[0]["incident_id"] == str(iid) and sent[0]["causation_id"] == str(seeded.request_event_id)
    assert sent[0]["payload"] | {} == {"decision": "approve", "decided_by": "dana", "reason": "looks right",
                                       "channel": "api", "decided_by_id": None}  # fmt: skip
    audit = await pool.fetch("SELECT actor, action, details FROM audit_log WHERE incident_id = $1 ORDER BY id", iid)
    assert [(a["actor"], a["action"], a["details"]["duplicate"]) for a in audit] == [
        ("dana", "console.approve", False), ("dana", "console.reject", True)]  # fmt: skip


async def test_a_decision_needs_a_pending_approval(nats_url, pool, bus_ready, tmp_path) -> None:
    failed = await seed_incident(pool, pending=False)
    settings = console_settings(nats_url, tmp_path, approvers={"dana": DANA})
    auth = {"authorization": f"Bearer {DANA}"}
    async with console_app(settings, pool) as (app, _), client(app) as http:
        resp = await http.post(f"/incidents/{failed.incident_id}/decision", json={"decision": "approve"}, headers=auth)
        assert resp.status_code == 409 and "not waiting for approval (state: failed)" in resp.json()["message"]
        missing = await http.post(f"/incidents/{uuid.uuid4()}/decision", json={"decision": "approve"}, headers=auth)
        assert missing.status_code == 404
        bad = await http.post(f"/incidents/{failed.incident_id}/decision", json={"decision": "merge"}, headers=auth)
        assert bad.status_code == 400
    assert await stream_events(bus_ready, subjects.APPROVAL_DECIDED) == []


# ------------------------------------------------------------------ live events


class Frames:
    """The event frames of one server-sent event stream, read as they come."""

    def __init__(self, resp: httpx.Response) -> None:
        self.lines = resp.aiter_lines()

    async def next(self, want: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []

        async def read() -> None:
            async for line in self.lines:
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    if len(got) >= want:
                        return

        await asyncio.wait_for(read(), timeout)
        return got


async def test_live_events_arrive_as_server_sent_events_filtered_by_subject(nats_url, pool, bus_ready, tmp_path):
    settings = console_settings(nats_url, tmp_path, token=VIEWER)
    old = _alert()
    async with console_app(settings, pool) as (app, deps), serving(app) as base:
        await deps.bus.publish(old)
        headers = {"authorization": f"Bearer {VIEWER}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=15) as http:
            async with http.stream("GET", "/events/stream?subject=pagerpatch.>&backlog=5") as everything, \
                    http.stream("GET", "/events/stream?subject=fix.>") as fixes:  # fmt: skip
                assert everything.headers["content-type"].startswith("text/event-stream")
                every, only_fixes = Frames(everything), Frames(fixes)
                backlog = await every.next(1)
                assert backlog[0]["type"] == "alert.received" and backlog[0]["summary"] == "boom"
                await asyncio.sleep(0.3)  # both consumers exist before the next events
                iid = uuid.uuid4()
                new_alert = _alert()
                fix_failed = FixFailed.create(FixFailedPayload(repo="shop", reason="no candidate", attempts=0),
                                              source="fixgen", incident_id=iid)  # fmt: skip
                await deps.bus.publish(new_alert)
                await deps.bus.publish(fix_failed)
                live = await every.next(2)
                assert [f["type"] for f in live] == ["alert.received", "fix.failed"]
                assert live[1]["incident_id"] == str(iid) and live[1]["summary"] == "no candidate"
                assert [f["type"] for f in await only_fixes.next(1)] == ["fix.failed"]
            refused = await http.get("/events/stream?subject=fix.>.x")  # ">" only last
            assert refused.status_code == 400

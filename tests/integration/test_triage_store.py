"""Triage on real Postgres (and, last, the real runtime on NATS): the same decisions as the eval's store,
one incident under concurrency, re-runs that change nothing, bounded history, reasons for `incidents show`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from typer.testing import CliRunner

from pagerpatch import cli
from pagerpatch.incidents import finish_handoff
from pagerpatch.kernel import bus, store
from pagerpatch.kernel.runtime import start_service, stop_service
from pagerpatch.settings import Settings, TriageSettings
from schemas import streams, subjects
from schemas.events import AlertReceived, AlertReceivedPayload
from services.triage import eval as triage_eval
from services.triage import usecase
from services.triage.adapters import PgTriageStore, prune
from services.triage.app import bootstrap, create_service
from services.triage.ports import NoHint, TriageStore
from services.triage.settings import TriageConfig
from tests.support.streams import delete_streams

pytestmark = pytest.mark.integration

GOLDEN = triage_eval.shipped_dataset()
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
async def pg(fresh_db: str, tmp_path: Path) -> AsyncIterator[tuple[asyncpg.Pool, Settings]]:
    await store.migrate(fresh_db)
    pool = await store.create_pool(fresh_db, max_size=12)
    try:
        yield pool, Settings(database_url=fresh_db, home=tmp_path)
    finally:
        await pool.close()


def alert(at: float = 0, **fields: Any) -> AlertReceived:
    payload: dict[str, Any] = {"source": "alertmanager", "service": "search", "title": "search 5xx above 5%",
                               "severity_hint": "critical", "kind": "availability",
                               "occurred_at": T0 + timedelta(seconds=at)}  # fmt: skip
    payload.update(fields)
    return AlertReceived.create(AlertReceivedPayload(**payload), source="ingest")


async def test_golden_dataset_decides_the_same_on_postgres_as_in_memory(pg: tuple[asyncpg.Pool, Settings]) -> None:
    pool, settings = pg
    cases = triage_eval.load_dataset(GOLDEN)

    @asynccontextmanager
    async def postgres(case: triage_eval.LoadedCase) -> AsyncIterator[TriageStore]:
        await pool.execute("TRUNCATE incidents, incident_events, alert_observations")
        yield PgTriageStore(pool, settings)

    on_pg = await triage_eval.run(cases, postgres)
    in_memory = await triage_eval.run(cases)

    def key(o: triage_eval.Outcome) -> tuple[Any, ...]:
        return o.case_id, o.index, o.got_class, o.got_severity

    assert [key(o) for o in on_pg.outcomes] == [key(o) for o in in_memory.outcomes]
    assert on_pg.class_accuracy == in_memory.class_accuracy


async def test_concurrent_alerts_of_one_group_open_exactly_one_incident(pg: tuple[asyncpg.Pool, Settings]) -> None:
    pool, settings = pg
    triage_store, cfg = PgTriageStore(pool, settings), TriageConfig()
    events = [alert(i * 0.01, resource=f"10.0.0.{i}:80") for i in range(30)]
    results = await asyncio.gather(*(usecase.triage(e, triage_store, cfg, NoHint(), T0) for e in events))
    assert sorted(r.decision.classification for r in results).count("real") == 1
    row = await pool.fetchrow("SELECT count(*) AS n, max(occurrences) AS occ FROM incidents")
    assert (row["n"], row["occ"]) == (1, 30)
    assert await pool.fetchval("SELECT count(*) FROM alert_observations") == 30


async def test_open_after_counts_every_concurrent_alert(pg: tuple[asyncpg.Pool, Settings]) -> None:
    pool, settings = pg
    rules = TriageSettings.model_validate({"open_after": [{"name": "three", "count": 3, "within_s": 60}]})
    cfg = TriageConfig(rules=rules)
    triage_store = PgTriageStore(pool, settings)
    events = [alert(0, resource=f"h{i}") for i in range(3)]
    results = await asyncio.gather(*(usecase.triage(e, triage_store, cfg, NoHint(), T0) for e in events))
    # Without the group lock, each would count only itself and the others it happened to see: none might open.
    assert sorted(r.decision.classification for r in results) == ["noise", "noise", "real"]


async def test_a_rerun_republishes_the_same_decision_and_counts_nothing_twice(
    pg: tuple[asyncpg.Pool, Settings],
) -> None:
    pool, settings = pg
    triage_store, cfg = PgTriageStore(pool, settings), TriageConfig()
    first, dup, resolved = alert(0), alert(10), alert(20, status="resolved")
    for e in (first, dup, dup, resolved, resolved, first):
        await usecase.triage(e, triage_store, cfg, NoHint(), T0)
    again = await usecase.triage(first, triage_store, cfg, NoHint(), T0)
    assert again.replayed and again.decision.classification == "real"
    inc = await pool.fetchrow("SELECT state, occurrences, outcome, reasons FROM incidents")
    assert inc["occurrences"] == 2 and inc["state"] == "resolved"
    assert "every alert of its group resolved" in inc["outcome"]
    assert any(r.startswith("real:") for r in inc["reasons"])
    timeline = await pool.fetch("SELECT summary FROM incident_events ORDER BY occurred_at")
    assert [r["summary"] for r in timeline] == ["firing: search 5xx above 5%", "resolved: search 5xx above 5%"]


class CountingPool:
    """The pool, counting every statement sent on the connections it hands out (one statement, one round trip)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements: list[str] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn:
            yield CountingConnection(conn, self.statements)


class CountingConnection:
    def __init__(self, conn: asyncpg.Connection, statements: list[str]) -> None:
        self.conn, self.statements = conn, statements

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.conn, name)
        if name not in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
            return attr

        async def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
            self.statements.append(sql)
            return await attr(sql, *args, **kwargs)

        return counted


async def test_a_storms_firing_duplicate_costs_two_round_trips(pg: tuple[asyncpg.Pool, Settings]) -> None:
    pool, settings = pg
    counting = CountingPool(pool)
    triage_store, cfg = PgTriageStore(counting, settings), TriageConfig()
    await usecase.handle_alert(alert(0), triage_store, cfg, NoHint(), T0)
    counting.statements.clear()
    result = await usecase.handle_alert(alert(1, resource="10.0.0.2:80"), triage_store, cfg, NoHint(), T0)
    assert result.decision.classification == "duplicate"
    # The group read, then observation + timeline + count in one statement; no lock, no transaction, no prune.
    assert len(counting.statements) == 2, counting.statements
    assert "INSERT INTO alert_observations" in counting.statements[1]
    assert "INSERT INTO incident_events" in counting.statements[1]
    row = await pool.fetchrow("SELECT occurrences FROM incidents")
    assert row["occurrences"] == 2
    assert await pool.fetchval("SELECT count(*) FROM incident_events WHERE type = 'alert.received'") == 1


async def test_history_is_pruned_by_age_and_per_group_cap(pg: tuple[asyncpg.Pool, Settings]) -> None:
    pool, settings = pg
    settings = settings.model_copy(update={"triage": TriageSettings(history_max_per_group=10,
                                                                      history_retention_s=3600)})  # fmt: skip
    triage_store, cfg = PgTriageStore(pool, settings), TriageConfig(rules=settings.triage)
    for i in range(25):
        await usecase.triage(alert(i), triage_store, cfg, NoHint(), T0)
    await usecase.triage(alert(0, title="another group"), triage_store, cfg, NoHint(), T0)
    assert await prune(pool, settings) == 0  # nothing is old enough yet: in-flight redeliveries keep theirs
    await pool.execute("UPDATE alert_observations SET recorded_at = now() - interval '20 minutes'")
    assert await prune(pool, settings) == 15  # the group keeps its newest 10
    await pool.execute(
        "UPDATE alert_observations SET recorded_at = now() - interval '2 hours' WHERE fingerprint = ("
        "SELECT fingerprint FROM alert_observations GROUP BY fingerprint HAVING count(*) = 1)"
    )
    assert await prune(pool, settings) == 1
    assert await pool.fetchval("SELECT count(*) FROM alert_observations") == 10


async def test_the_service_triages_from_the_stream_and_incidents_show_explains(
    nats_url: str, pg: tuple[asyncpg.Pool, Settings], tmp_path: Path
) -> None:
    pool, base = pg
    settings = base.model_copy(update={"nats_url": nats_url})
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await delete_streams(js)
    await bus.setup(js, settings.bus, consumer_defs=[streams.consumer("triage")])
    svc = await start_service(create_service(), settings, bootstrap, finish=finish_handoff)
    try:
        now = datetime.now(UTC)
        events = [alert(0, occurred_at=now + timedelta(seconds=i)) for i in range(5)]
        events.append(alert(0, occurred_at=now, noise_hint="insufficient_data", title="other"))
        for e in events:
            await bus.publish(svc.broker, e)
        deadline = time.monotonic() + 20
        while await pool.fetchval("SELECT count(*) FROM checkpoints WHERE status = 'done'") < len(events):
            assert time.monotonic() < deadline, "triage did not finish"
            await asyncio.sleep(0.1)
        inc = await pool.fetchrow("SELECT id, occurrences FROM incidents")
        assert inc["occurrences"] == 5
        sub = await js.subscribe(subjects.ALERT_SUPPRESSED, stream=streams.EVENTS_STREAM, ordered_consumer=True)
        got = [json.loads((await sub.next_msg(timeout=2)).data)["payload"] for _ in range(5)]
        assert sorted(p["reason"] for p in got) == ["duplicate"] * 4 + ["noise"]
        assert any("insufficient_data" in r for p in got for r in p["reasons"])
    finally:
        await stop_service(svc)
        await nc.drain()
    result = await asyncio.to_thread(
        CliRunner().invoke, cli.app, ["incidents", "show", str(inc["id"])],
        env={"NATS_URL": nats_url, "DATABASE_URL": settings.database_url or "", "PAGERPATCH_HOME": str(tmp_path),
             "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "reasons (why triage opened it):" in result.output
    assert "real: source severity, kind 'availability'" in result.output
    assert "triage decisions on its alerts: 4 duplicate, 1 real" in result.output
    assert "dedup: duplicate of live incident" in result.output

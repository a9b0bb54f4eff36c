"""Chaos, bounded: incidents on the demo scenario through `pagerpatch up` while services are SIGKILLed and
Postgres and NATS go away; nothing is lost, doubled or dead-lettered, and every incident ends.

The long form (300 incidents, 60 s outages) is bench/chaos.py.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.harness import STAGE_EVENTS, Chaos, Figures, Plan

pytestmark = pytest.mark.chaos


def assert_survived(f: Figures) -> None:
    n = f.plan.incidents
    report = "\n".join(f.lines())
    assert f.accepted == n and f.incidents == n, report  # no loss
    assert f.server_errors == [], report  # an outage is a 503, never a 500
    assert f.dead_letters == 0, report
    assert f.states == {"pr_opened": n}, report  # every incident reached its end: the pull request
    assert f.pr_records == n and f.pr_records_pushing == 0, report  # one completed record per incident
    assert f.branches == n, report  # one branch per incident
    for kind in STAGE_EVENTS:
        assert f.stage_events[kind] == {1: n}, report  # one event per stage per incident on the stream


@pytest.mark.timeout(150)
async def test_outages_of_postgres_and_nats_and_killed_services_lose_nothing() -> None:
    # Alerts keep arriving through both outages (6 over ~7 s): ingest answers 503 while a server is away.
    chaos = Chaos(Plan(incidents=6, rate_per_s=0.8, outage_s=3.0, kills=2, outages=("postgres", "nats")))
    try:
        await asyncio.to_thread(chaos.start)
        await asyncio.sleep(3.0)  # a healthy run first: a crash after it is restarted at once
        ingest_back_s = await chaos.ingest_recovery_s()
        figures = await chaos.run()
    finally:
        alive = await asyncio.to_thread(chaos.close)
    print("\n".join(figures.lines()))
    assert_survived(figures)
    assert ingest_back_s < 5.0, f"ingest took {ingest_back_s:.1f}s to be ready again after a crash"
    assert alive == [], f"processes left behind: {alive}"

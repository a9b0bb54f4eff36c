"""`pagerpatch replay` on a real stack: the demo incident runs through triage, diagnosis, fixgen and review (real
NATS, Postgres, git and the sandbox), then is replayed -- as recorded it decides the same; with a tier-3 service
catalog entry and a policies.yaml protecting the changed code, severity and risk change -- while nothing is
published to the live stream and no live row changes."""

from __future__ import annotations

import functools
import json
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from nats.js import JetStreamContext

from pagerpatch.kernel import bus
from pagerpatch.ops.demo_repo import DemoRepo, build_demo_repo
from pagerpatch.sandbox import BubblewrapSandbox
from pagerpatch.settings import Settings
from schemas import streams
from schemas.events import AlertReceived, AlertReceivedPayload
from services.diagnosis import app as diagnosis
from services.fixgen import app as fixgen
from services.review import app as review
from services.triage import app as triage
from tests.support.cli import run_cli
from tests.support.stages import running_stage
from tests.support.streams import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_bwrap = BubblewrapSandbox()
needs_bwrap = pytest.mark.skipif(not _bwrap.available(), reason=_bwrap.unavailable_reason() or "")

# Rows no replay may touch (the live incident, its timeline, checkpoints, approvals, audit, ledger, observations).
LIVE_TABLES = ("incidents", "incident_events", "checkpoints", "approvals", "audit_log", "llm_calls",
               "alert_observations", "dead_letters")  # fmt: skip


def live_config(repo: DemoRepo, **extra: Any) -> dict[str, Any]:
    return {
        "repos": [{"name": "shop", "path": str(repo.path), "default_branch": "main", "services": ["checkout"],
                   "test_command": "python -m pytest -q"}],
        "llm": {"config_dir": str(ROOT / "config")},
        "sandbox": {"timeout_s": 120},
        **extra,
    }  # fmt: skip


def demo_alert(repo: DemoRepo) -> AlertReceived:
    trigger = repo.trigger()
    payload = AlertReceivedPayload(
        source="generic", service="checkout", title=f"{trigger.exception_type} in checkout: POST /checkout 500",
        severity_hint="error", stack_trace=trigger.traceback, commit=repo.head, labels={"env": "production"},
    )  # fmt: skip
    return AlertReceived.create(payload, source="ingest")


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[str]]:
    out = {}
    for table in LIVE_TABLES:
        rows = await pool.fetch(f"SELECT * FROM {table}")  # fixed table names
        out[table] = sorted(json.dumps(dict(r), default=str, sort_keys=True) for r in rows)
    return out


async def stream_count(js: JetStreamContext) -> int:
    return int((await js.stream_info(streams.EVENTS_STREAM)).state.messages)


@needs_bwrap
async def test_replay_shows_what_a_changed_rule_and_policy_would_have_decided(
    nats_url: str, fresh_db: str, js: JetStreamContext, tmp_path: Path
) -> None:
    repo = build_demo_repo(tmp_path / "shop")
    home = tmp_path / "home"
    config_file = tmp_path / "pagerpatch.yaml"
    config_file.write_text(yaml.safe_dump(live_config(repo)))
    settings = Settings(nats_url=nats_url, database_url=fresh_db, home=home, **live_config(repo))
    alert = demo_alert(repo)
    async with AsyncExitStack() as stages:
        svcs = [await stages.enter_async_context(running_stage(m.create_service(), m.bootstrap, settings, js))
                for m in (triage, diagnosis, fixgen, review)]  # fmt: skip
        await bus.publish(svcs[0].broker, alert)
        pool = svcs[0].pool
        done = "SELECT count(*) FROM checkpoints WHERE stage = 'review' AND status = 'done'"
        await wait_for(lambda: pool.fetchval(done), timeout=180)
    pool = await asyncpg.create_pool(fresh_db, min_size=1, max_size=2)
    try:
        incident = await pool.fetchval("SELECT id FROM incidents")
        before, messages = await snapshot(pool), await stream_count(js)
        invoke = functools.partial(run_cli, "replay", home=home, database_url=fresh_db, nats_url=nats_url,
                                   env={"PAGERPATCH_CONFIG_FILE": str(config_file)})  # fmt: skip

        same = await invoke(str(incident)[:8])
        assert same.exit_code == 0, same.output
        assert f"replay of incident {incident}" in same.output
        assert "review     -> fix.approved" in same.output or "review     -> approval.requested" in same.output
        assert "no change: the replay decided as recorded" in same.output

        changed_config = tmp_path / "changed.yaml"
        changed_config.write_text(yaml.safe_dump(live_config(repo, service_catalog={"checkout": {"tier": 3}})))
        policies = tmp_path / "policies.yaml"
        policies.write_text(yaml.safe_dump({"protected_paths": ["shopcart/**"]}))
        result = await invoke(str(incident), "--config", str(changed_config), "--policies",
                              str(policies), "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        fields = doc["fields"]
        assert doc["incident_id"] == str(incident) and doc["alerts"] == 1
        assert [s["stage"] for s in doc["stages"] if s["ran"]] == ["triage", "diagnosis", "fixgen", "review"]
        assert fields["severity"]["changed"]
        assert (fields["severity"]["recorded"], fields["severity"]["replayed"]) == ("P2", "P3")
        assert any("tier-3" in r for r in fields["reasons"]["replayed"])
        assert any("hint 'error'" in r for r in fields["reasons"]["replayed"])  # the alert as it arrived
        assert not any("no longer on the stream" in n for n in doc["notes"])
        assert fields["risk"]["changed"] and fields["risk"]["replayed"].startswith("HIGH")
        assert any("protected path" in r for r in fields["risk_reasons"]["replayed"])
        assert fields["decision"]["replayed"] == "waits for approval"
        assert not fields["suspect"]["changed"] and fields["suspect"]["recorded"].startswith(repo.bad_commit[:12])
        assert not fields["patch"]["changed"] and not doc["patch"]["changed"]
        assert doc["patch"]["replayed"]["files"] == ["shopcart/pricing.py"]
        assert {"severity", "risk", "decision"} <= set(doc["changed"])

        printed = await invoke(str(incident), "--config", str(changed_config), "--policies",
                               str(policies))  # fmt: skip
        assert printed.exit_code == 0, printed.output
        assert "~ severity     P2 -> P3" in printed.output
        assert "~ risk         LOW (score 0) -> HIGH (score 50)" in printed.output
        assert "~ decision     approved by policy -> waits for approval" in printed.output
        assert "  suspect      " + repo.bad_commit[:12] in printed.output
        assert "changed: severity, reasons, risk, risk_reasons, decision" in printed.output

        noisy = tmp_path / "noisy.yaml"
        noise = {"known_noise": [{"name": "checkout-500s", "service": "checkout"}]}
        noisy.write_text(yaml.safe_dump(live_config(repo, triage=noise)))
        quiet = json.loads((await invoke(str(incident), "--config", str(noisy), "--json")).stdout)
        assert (quiet["fields"]["class"]["recorded"], quiet["fields"]["class"]["replayed"]) == ("real", "noise")
        assert [s["ran"] for s in quiet["stages"]] == [True, False, False, False]  # the chain stops at triage
        assert quiet["fields"]["suspect"]["replayed"] is None and quiet["fields"]["risk"]["replayed"] is None
        assert "diagnosis: not reached: triage produced nothing diagnosis consumes (incident.opened)" in quiet["notes"]

        assert await stream_count(js) == messages  # nothing published
        assert await snapshot(pool) == before  # no live row written
    finally:
        await pool.close()


async def test_replay_of_an_unknown_incident_exits_1(nats_url: str, fresh_db: str, tmp_path: Path) -> None:
    from pagerpatch.kernel import store

    await store.migrate(fresh_db)
    result = await run_cli("replay", str(uuid.uuid4()), home=tmp_path, database_url=fresh_db, nats_url=nats_url)
    assert result.exit_code == 1
    assert "no incident matches" in result.output

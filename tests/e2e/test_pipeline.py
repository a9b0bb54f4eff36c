"""End to end: the six services as separate processes, real NATS and Postgres, on the demo scenario."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from pagerpatch.kernel import store
from pagerpatch.ops.demo_repo import DemoRepo, build_demo_repo, demo_alert
from schemas import streams
from tests.e2e.system import System, build_ledger_repo, git, start, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    # Outside pytest's tmp root (see tests/conftest.py): the embedded Postgres runs as another user.
    home = Path(tempfile.mkdtemp(prefix="pagerpatch-e2e-"))
    demo = build_demo_repo(home / "repos" / "shopcart")
    ledger_bad, ledger_trace = build_ledger_repo(home / "repos" / "ledger")
    config = {
        "repos": [{"name": "ledger", "path": str(home / "repos" / "ledger"), "services": ["ledger-api"],
                   "test_command": "python -m pytest -q"}],
        "policy": {"protected_paths": ["ledger/money.py"]},
        "telemetry": {"exporter": "file"},
        "bus": {"retry_base_s": 0.5, "consumers": {"*": {"ack_wait_s": 4}}},
    }  # fmt: skip
    system = start(home, config, {"PAGERPATCH_FAILPOINTS": "triage.after_publish,notifier.after_push"})
    try:
        system.cli("repos", "add", "demo-shopcart", "--path", str(demo.path), "--service", "checkout")
        yield {"system": system, "demo": demo, "ledger_bad": ledger_bad, "ledger_trace": ledger_trace, "home": home}
    finally:
        alive = stop(system)
        shutil.rmtree(home, ignore_errors=True)
    assert alive == [], f"processes left behind after Ctrl-C: {alive}"


def incident_for(delivery_event: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(delivery_event, "triage:incident")


async def _query(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with store.connection(url) as conn:
        return [dict(r) for r in await conn.fetch(sql, *args)]


def query(system: System, sql: str, *args: Any) -> list[dict[str, Any]]:
    return asyncio.run(_query(system.database_url, sql, *args))


def expect_state(system: System, incident: uuid.UUID, expected: str, stops: set[str]) -> None:
    state = wait_state(system, incident, {expected, *stops})
    assert state == expected, f"incident {incident} ended in {state}; log tail:\n{system.log()[-8000:]}"


def wait_state(system: System, incident: uuid.UUID, states: set[str], timeout: float = 150) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        rows = query(system, "SELECT state FROM incidents WHERE id = $1", incident)
        state = rows[0]["state"] if rows else None
        if state in states:
            return str(state)
        time.sleep(0.5)
    raise AssertionError(f"incident {incident} stuck in {state!r}; log tail:\n{system.log()[-6000:]}")


async def _stream(url: str) -> list[dict[str, Any]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.subscribe("pagerpatch.>", stream=streams.EVENTS_STREAM, ordered_consumer=True)
    out = []
    try:
        while True:
            msg = await sub.next_msg(timeout=1.0)
            try:
                out.append(json.loads(msg.data))
            except ValueError:
                pass
    except nats.errors.TimeoutError:
        pass
    finally:
        await nc.drain()
    return out


def stream_events(system: System) -> list[dict[str, Any]]:
    return asyncio.run(_stream(system.nats_url))


def changed_lines(patch: str) -> list[str]:
    return [ln for ln in patch.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_alert_becomes_a_tested_pull_request_exactly_once(world: dict[str, Any]) -> None:
    system: System = world["system"]
    demo: DemoRepo = world["demo"]
    resp = system.post_alert(demo_alert(demo), "demo-1")
    assert resp.status_code == 202, resp.text
    incident = incident_for(uuid.UUID(resp.json()["event_id"]))
    expect_state(system, incident, "pr_opened", {"pr_opened", "failed", "rejected"})

    prs = query(system, "SELECT * FROM pull_requests WHERE incident_id = $1", incident)
    assert len(prs) == 1
    pr = prs[0]
    remote = Path(pr["url"].removeprefix("file://").split("?")[0])
    branch = pr["branch"]
    assert branch == f"pagerpatch/{incident}"
    heads = git(remote, "for-each-ref", "--format=%(refname)", "refs/heads/pagerpatch/")
    assert heads.splitlines() == [f"refs/heads/{branch}"]  # one branch, despite the notifier's crash
    assert git(remote, "rev-parse", branch) == pr["head_commit"]
    assert git(remote, "rev-parse", f"{branch}^") == demo.head

    # The diff is the revert of the bad commit.
    pr_diff = git(remote, "diff", f"{branch}^", branch)
    revert = git(demo.path, "diff", demo.bad_commit, f"{demo.bad_commit}^")
    assert changed_lines(pr_diff) == changed_lines(revert)

    # The repository's tests pass on the branch (and fail on the base).
    with tempfile.TemporaryDirectory() as tmp:
        git(Path(tmp), "clone", "-q", "--branch", branch, str(remote), "work")
        ok = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=Path(tmp) / "work",
                            capture_output=True, text=True)  # fmt: skip
        assert ok.returncode == 0, ok.stdout
        git(Path(tmp) / "work", "checkout", "-q", f"{branch}^")
        bad = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=Path(tmp) / "work",
                             capture_output=True, text=True)  # fmt: skip
        assert bad.returncode != 0

    # Each stage's event appears exactly once, although triage and the notifier were killed mid-way.
    events = stream_events(system)
    alert_id = resp.json()["event_id"]
    mine = [e for e in events if e.get("incident_id") == str(incident) or e["event_id"] == alert_id]
    counts = Counter(e["type"] for e in mine)
    assert counts == Counter({"alert.received": 1, "incident.opened": 1, "diagnosis.ready": 1, "fix.validated": 1,
                              "fix.approved": 1, "pr.opened": 1, "notification.sent": 1})  # fmt: skip
    home: Path = world["home"]
    assert (home / "failpoints" / "triage.after_publish").exists()
    assert (home / "failpoints" / "notifier.after_push").exists()
    assert "exited with -9" in system.log()

    fix = next(e for e in mine if e["type"] == "fix.validated")["payload"]
    assert fix["tests"]["passed"] and fix["tests"]["sandbox"] == "bubblewrap"
    diag = next(e for e in mine if e["type"] == "diagnosis.ready")["payload"]
    assert diag["suspect_commit"]["sha"] == demo.bad_commit
    assert query(system, "SELECT state FROM incidents WHERE id = $1", incident)[0]["state"] == "pr_opened"

    # One trace spans every hop.
    ids = {e["event_id"] for e in mine}
    spans = [json.loads(line) for line in (home / "traces.jsonl").read_text().splitlines()]
    hops = [s for s in spans if s["attributes"].get("pagerpatch.event_id") in ids]
    assert {s["service"] for s in hops} >= {f"pagerpatch-{n}" for n in ("triage", "diagnosis", "fixgen", "review",
                                                                          "notifier")}  # fmt: skip
    assert len({s["trace_id"] for s in hops}) == 1


def test_same_fingerprint_opens_no_second_incident_or_pr(world: dict[str, Any]) -> None:
    system: System = world["system"]
    demo: DemoRepo = world["demo"]
    before = query(system, "SELECT count(*) AS n FROM pull_requests")[0]["n"]
    resp = system.post_alert(demo_alert(demo), "demo-2")
    assert resp.status_code == 202
    event_id = resp.json()["event_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        suppressed = [
            e for e in stream_events(system) if e["type"] == "alert.suppressed" and e["causation_id"] == event_id
        ]
        if suppressed:
            break
        time.sleep(0.5)
    assert suppressed and suppressed[0]["payload"]["reason"] == "duplicate"
    rows = query(system, "SELECT occurrences FROM incidents WHERE service = 'checkout'")
    assert [r["occurrences"] for r in rows] == [2]
    assert query(system, "SELECT count(*) AS n FROM pull_requests")[0]["n"] == before

    again = system.post_alert(demo_alert(demo), "demo-2")  # a provider retry of the same delivery
    assert again.status_code == 202 and again.json() == {"event_id": event_id, "duplicate": True}


def ledger_alert(world: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    return {"title": "ZeroDivisionError in ledger report", "service": "ledger-api", "severity": "error",
            "stack_trace": world["ledger_trace"], "fingerprint": fingerprint}  # fmt: skip


def test_high_risk_fix_waits_for_approval_then_gets_its_pr(world: dict[str, Any]) -> None:
    system: System = world["system"]
    resp = system.post_alert(ledger_alert(world, "ledger-average-1"), "ledger-1")
    incident = incident_for(uuid.UUID(resp.json()["event_id"]))
    expect_state(system, incident, "awaiting_approval", {"awaiting_approval", "pr_opened", "failed"})
    time.sleep(2)
    assert query(system, "SELECT * FROM pull_requests WHERE incident_id = $1", incident) == []
    approval = query(system, "SELECT status, risk FROM approvals WHERE incident_id = $1", incident)[0]
    assert approval["status"] == "pending" and approval["risk"]["level"] == "HIGH"
    assert any("ledger/money.py" in r for r in approval["risk"]["reasons"])

    system.cli("approve", str(incident)[:8], "--reason", "checked the revert", "--by", "dana")
    expect_state(system, incident, "pr_opened", {"pr_opened", "failed"})
    pr = query(system, "SELECT * FROM pull_requests WHERE incident_id = $1", incident)[0]
    assert pr["repo"] == "ledger" and "approved by dana" in pr["body"]
    diag = [e for e in stream_events(system) if e["type"] == "diagnosis.ready" and e["incident_id"] == str(incident)]
    assert diag[0]["payload"]["suspect_commit"]["sha"] == world["ledger_bad"]
    shown = system.cli("incidents", "show", str(incident)).stdout
    assert "pr_opened" in shown and "approval.decided" in shown


def test_reject_ends_the_incident_with_the_reason(world: dict[str, Any]) -> None:
    system: System = world["system"]
    resp = system.post_alert(ledger_alert(world, "ledger-average-2"), "ledger-2")
    incident = incident_for(uuid.UUID(resp.json()["event_id"]))
    expect_state(system, incident, "awaiting_approval", {"awaiting_approval", "failed"})
    system.cli("reject", str(incident), "--reason", "revert would drop the new report", "--by", "dana")
    expect_state(system, incident, "rejected", {"rejected", "pr_opened"})
    assert query(system, "SELECT * FROM pull_requests WHERE incident_id = $1", incident) == []
    row = query(system, "SELECT status, reason, decided_by FROM approvals WHERE incident_id = $1", incident)[0]
    assert row == {"status": "rejected", "reason": "revert would drop the new report", "decided_by": "dana"}
    assert "revert would drop the new report" in system.cli("incidents", "show", str(incident)).stdout
    second = system.cli("approve", str(incident), check=False)
    assert second.returncode == 1 and "already rejected" in second.stderr

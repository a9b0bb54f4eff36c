"""`pagerpatch eval fixes`, end to end: build the scenarios, run them through an embedded stack of their own, read
what the pipeline did from its events, and judge each fix with the scenario's oracle test.

The stack lives in `<PAGERPATCH_HOME>/eval-fixes` (its own NATS, Postgres and state, never a running `pagerpatch up`
or a configured database), started and stopped with `runner.Stack` as `pagerpatch demo` does; its output goes to
`stack.log` there. All alerts are posted at once and followed together, each with its own deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from pagerpatch.git import repos
from pagerpatch.git.workspace import git
from pagerpatch.incidents import IncidentRepository
from pagerpatch.kernel import bus, store
from pagerpatch.ops import endpoints, webhooks
from pagerpatch.ops.fixes_eval.history import BuiltScenario, Scenario, build, write_generated
from pagerpatch.ops.fixes_eval.oracle import check_fix, oracle_at, pr_patch
from pagerpatch.ops.fixes_eval.outcome import DONE_STATES, FINAL_EVENT, PipelineOutcome, read_outcome
from pagerpatch.ops.fixes_eval.report import EvalReport, OracleTarget, OracleVerdict, ScenarioResult
from pagerpatch.ops.runner import Stack
from pagerpatch.settings import Settings
from schemas import codec, streams, subjects
from schemas.envelope import Event

__all__ = ["DEFAULT_TIMEOUT_S", "EVAL_DIR", "EvalError", "EventLog", "run_fixes_eval"]

log = logging.getLogger(__name__)

EVAL_DIR = "eval-fixes"  # under the state folder: the evaluation's stack, repositories and scratch checkouts
DEFAULT_TIMEOUT_S = 180.0
FINAL_EVENT_GRACE_S = 10.0  # an incident's state is stored before the event that set it is on the stream
POLL_S = 0.3

Say = Callable[[str], None]


class EvalError(Exception):
    """The evaluation could not run (the stack did not start); the message says why and where to look."""


class EventLog:
    """Every pipeline event published while the evaluation runs (subscribed before the first alert is posted)."""

    def __init__(self) -> None:
        self.events: list[Event[Any]] = []
        self._nc: NatsClient | None = None

    async def start(self, nats_url: str) -> None:
        self._nc = await bus.connect(nats_url, "pagerpatch-eval-fixes")
        await self._nc.jetstream().subscribe(subjects.ALL_EVENTS, stream=streams.EVENTS_STREAM, cb=self._received,
                                             ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)  # fmt: skip

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.drain()

    async def _received(self, msg: Msg) -> None:
        try:
            self.events.append(codec.decode(msg.data))
        except ValueError as exc:  # an event this version cannot read says nothing about the scenarios
            log.warning("eval fixes: unreadable event on %s: %s", msg.subject, exc)

    def incident_of(self, alert_event: uuid.UUID) -> uuid.UUID | None:
        """The incident triage opened for the alert (None: not yet, or never)."""
        return next((e.incident_id for e in self.events if e.type == "incident.opened"
                     and e.causation_id == alert_event), None)  # fmt: skip

    def suppressed(self, alert_event: uuid.UUID) -> bool:
        return any(e.type == "alert.suppressed" and e.causation_id == alert_event for e in self.events)

    def of_incident(self, incident_id: uuid.UUID) -> list[Event[Any]]:
        return [e for e in self.events if e.incident_id == incident_id]


@dataclass
class _Tracked:
    """One scenario's alert as the evaluation follows it through the stack."""

    built: BuiltScenario
    alert: uuid.UUID | None
    posted_at: float
    problem: str = ""
    incident: uuid.UUID | None = None
    state: str = ""
    done_at: float | None = None
    finished_at: float | None = None
    events: list[Event[Any]] = field(default_factory=list)  # the incident's, read before the stack stops

    def outcome(self) -> PipelineOutcome:
        if self.incident is None:
            return PipelineOutcome(None, self.state, detail=self.problem or "no incident")
        return read_outcome(self.events, self.state, self.incident)


async def run_fixes_eval(
    settings: Settings, scenarios: Sequence[Scenario], *, timeout_s: float = DEFAULT_TIMEOUT_S, say: Say
) -> EvalReport:
    """Run `scenarios` through a stack of their own and return the report; raises EvalError when it cannot run."""
    started = time.monotonic()
    run = uuid.uuid4().hex[:10]
    home = settings.state_dir / EVAL_DIR
    repos_dir, scratch, installed = home / "repos", home / "scratch", home / "installed"
    for folder in (repos_dir, scratch, installed):
        await asyncio.to_thread(shutil.rmtree, folder, True)
    say(f"== building {len(scenarios)} scenario repositories under {repos_dir}")
    built = [await asyncio.to_thread(build, s, repos_dir / s.name) for s in scenarios]
    valid = {b.scenario.name: not (await asyncio.to_thread(oracle_at, b, b.head, scratch)).passed for b in built}
    probe = await asyncio.to_thread(_installed_copies, built, installed)
    tracked = await _through_the_stack(settings, home, built, run, timeout_s, probe, say)
    say("== judging each fix with its scenario's oracle test (outside the repository, on a clean checkout)")
    results = [await asyncio.to_thread(_judge, t, valid[t.built.scenario.name], scratch) for t in tracked]
    return EvalReport(run, tuple(results), time.monotonic() - started)


async def _through_the_stack(
    settings: Settings, home: Path, built: Sequence[BuiltScenario], run: str, timeout_s: float, probe: Path | None,
    say: Say,
) -> list[_Tracked]:  # fmt: skip
    """Start the stack, post every alert, follow them until done or out of time, and stop the stack again."""
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    log_path = home / "stack.log"
    say(f"== starting an embedded stack in {home} (its output goes to {log_path})")
    stack = Stack(settings.model_copy(update={"home": home, "nats_url": None, "database_url": None, "ingest_port": 0}))
    events = EventLog()
    with log_path.open("w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
        try:
            try:
                with _importable(probe):
                    ep = await stack.start()
            except Exception as exc:
                raise EvalError(f"could not start pagerpatch: {exc} (see {log_path})") from exc
            await events.start(ep.nats_url)
            async with store.connection(ep.database_url) as conn:
                for b in built:
                    await repos.register(conn, b.repo_config())
            tracked = await _post_all(settings, ep, built, run, say)
            await _follow(ep, events, tracked, timeout_s, say)
            for t in tracked:
                t.events = events.of_incident(t.incident) if t.incident else []
            return tracked
        finally:
            await events.stop()
            await stack.stop()


async def _post_all(
    settings: Settings, ep: endpoints.Endpoints, built: Sequence[BuiltScenario], run: str, say: Say
) -> list[_Tracked]:
    tracked: list[_Tracked] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for b in built:
            body = json.dumps(b.alert(run)).encode()
            delivery = f"eval-fixes-{run}-{b.scenario.name}"
            headers = {"content-type": "application/json", "x-pagerpatch-delivery": delivery,
                       **webhooks.generic_signature_headers(settings, body)}  # fmt: skip
            resp = await client.post(f"{ep.ingest_url}/webhooks/generic", content=body, headers=headers)
            if resp.status_code != 202:
                problem = f"ingest refused the alert: {resp.status_code} {resp.text[:200]}"
                tracked.append(_Tracked(b, None, time.monotonic(), problem, finished_at=time.monotonic()))
                say(f"   {b.scenario.label}: {problem}")
                continue
            tracked.append(_Tracked(b, uuid.UUID(resp.json()["event_id"]), time.monotonic()))
    say(f"== {sum(1 for t in tracked if t.alert)} alert(s) accepted by ingest; following them")
    return tracked


async def _follow(
    ep: endpoints.Endpoints, events: EventLog, tracked: Sequence[_Tracked], timeout_s: float, say: Say
) -> None:
    """Poll each incident's state until it is done (and its final event arrived) or its deadline passed."""
    async with store.connection(ep.database_url) as conn:
        incidents = IncidentRepository(conn)
        while any(t.finished_at is None for t in tracked):
            for t in tracked:
                if t.finished_at is None:
                    await _step(t, incidents, events, timeout_s)
                    if t.finished_at is not None:
                        s = t.built.scenario
                        how = t.problem or t.state
                        say(f"   {s.label}: {how} after {t.finished_at - t.posted_at:.1f}s")
            await asyncio.sleep(POLL_S)


async def _step(t: _Tracked, incidents: IncidentRepository, events: EventLog, timeout_s: float) -> None:
    now = time.monotonic()
    late = now - t.posted_at > timeout_s
    assert t.alert is not None  # refused alerts are finished when posted
    t.incident = t.incident or events.incident_of(t.alert)
    if t.incident is None:
        if events.suppressed(t.alert):
            t.problem, t.finished_at = "triage suppressed the alert", now
        elif late:
            t.problem, t.finished_at = f"no incident opened within {timeout_s:.0f}s", now
        return
    t.state = await incidents.state(t.incident) or ""
    if t.state in DONE_STATES:
        t.done_at = t.done_at or now
        final = FINAL_EVENT.get(t.state)
        arrived = final is None or any(e.type == final for e in events.of_incident(t.incident))
        if arrived or now - t.done_at > FINAL_EVENT_GRACE_S:
            t.finished_at = now
    elif late:
        t.problem, t.finished_at = f"still {t.state or 'unknown'} after {timeout_s:.0f}s", now


def _judge(t: _Tracked, oracle_valid: bool, scratch: Path) -> ScenarioResult:
    """The scenario's result: the outcome, and the oracle's verdict on the pull request (or the pending fix)."""
    b, s, outcome = t.built, t.built.scenario, t.outcome()
    if t.problem and outcome.outcome == "none":
        outcome = replace(outcome, detail=t.problem)
    target: OracleTarget = "none"
    patch: str | None = None
    verdict = OracleVerdict("none", None, "no fix to judge")
    if outcome.pr_branch and outcome.pr_url:
        target = "pr"
        remote = outcome.pr_url.removeprefix("file://").split("?")[0]
        patch = pr_patch(b, remote, outcome.pr_branch, scratch)
        if patch is None:
            verdict = OracleVerdict("pr", None, f"the pull request's branch cannot be read from {remote}")
    elif outcome.patch is not None and outcome.outcome in ("proved", "unproven"):
        target, patch = "pending", outcome.patch
    cosmetic = None
    if patch is not None:
        check = check_fix(b, patch, scratch)
        verdict = OracleVerdict(target, check.fixes, check.detail)
        cosmetic = check.cosmetic
    if outcome.reverted is not None and outcome.reverted in b.cosmetic_shas:
        cosmetic = cosmetic or f"it reverts {outcome.reverted[:8]}, a commit that changes no behaviour"
    seconds = (t.finished_at or time.monotonic()) - t.posted_at
    return ScenarioResult(s.name, s.letter, s.expected, b.bug_sha, outcome, verdict, oracle_valid, cosmetic,
                          s.mentions, seconds, s.language)  # fmt: skip


def _installed_copies(built: Sequence[BuiltScenario], folder: Path) -> Path | None:
    """The pre-bug packages of the scenarios that ask for it, where pagerpatch's own processes can import them: what
    the repository's tests would wrongly import if pagerpatch's environment leaked into the sandbox."""
    wanted = [b for b in built if b.scenario.installed_copy]
    for b in wanted:
        parent = git(b.path, "rev-parse", f"{b.bug_sha}^").strip()
        root = b.scenario.code_root.strip("/")
        prefix = f"{root}/" if root else ""
        for rel in git(b.path, "ls-tree", "-r", "--name-only", parent, "--", root or ".").splitlines():
            target = folder / rel.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(git(b.path, "show", f"{parent}:{rel}"), encoding="utf-8")
        write_generated(folder, replace(b.scenario, generated={
            rel.removeprefix(prefix): content for rel, content in b.scenario.generated.items()
        }))  # fmt: skip
    return folder if wanted else None


@contextlib.contextmanager
def _importable(folder: Path | None) -> Iterator[None]:
    """`folder` on the PYTHONPATH of the processes started meanwhile (the stack's services), then as it was."""
    if folder is None:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before

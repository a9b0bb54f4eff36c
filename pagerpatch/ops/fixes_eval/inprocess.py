"""`pagerpatch eval fixes` without the bus (the default): each scenario's alert through the replay chain.

The stages run in this process through their replay steps (`pagerpatch.replay` entry points, docs/replay.md):
triage on an in-memory store, diagnosis and fixgen on fresh clones and worktrees, the repository's tests in the
sandbox for real, review with its approvals in memory. No NATS, no Postgres, no service process. The alert is the
scenario's generic-webhook alert as ingest normalizes it; the scenario repositories are registered in the chain's
settings. Where review approves a fix by policy, its branch is pushed as the notifier pushes a pull request to a
local-git remote (`pagerpatch.scm.local`, under `<PAGERPATCH_HOME>/eval-fixes/scm`), so the oracle judges the PR
branch exactly as on a stack. The scenarios run a few at a time, each with its own deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pagerpatch.incidents.state import next_state
from pagerpatch.ops.fixes_eval.history import BuiltScenario
from pagerpatch.ops.fixes_eval.tracked import Tracked, importable
from pagerpatch.replay import STAGES, ReplayStep, StageOutcome, load_steps, run_chain
from pagerpatch.scm.local import LocalGitScm
from pagerpatch.settings import RepoConfig, Settings
from schemas.envelope import Event
from schemas.events import (
    AlertReceived,
    AlertReceivedPayload,
    FixApproved,
    FrameVars,
    IncidentOpened,
    PrOpened,
    PrOpenedPayload,
)

__all__ = ["ChainsMissing", "alert_event", "incident_state", "through_the_chain"]

Say = Callable[[str], None]

AT_ONCE = max(2, os.cpu_count() or 1)  # scenarios whose chains run at the same time
BRANCH_PREFIX = "pagerpatch/"  # the notifier names an incident's pull request branch so
RAW_LIMIT = 16_384  # AlertReceivedPayload.raw
TRUNCATED = "…[truncated]"
PR_STAGE = "notifier"  # the source of the pr.opened this module records for a pushed branch


class ChainsMissing(Exception):
    """A stage's replay step is not installed: the evaluation cannot run in-process."""


def alert_event(alert: Mapping[str, Any], *, delivery: str, team: str | None, received_at: datetime) -> AlertReceived:
    """The generic-webhook alert `alert` (history.BuiltScenario.alert) as ingest's generic provider normalizes it:
    text stripped, source `generic`, the severity as a hint, `fingerprint_inputs` the title, kind `error` with a
    stack trace, and the frames' variables (frames without any are left out, as ingest leaves them)."""
    raw = json.dumps(alert, ensure_ascii=False, default=str)
    if len(raw) > RAW_LIMIT:
        raw = raw[: RAW_LIMIT - len(TRUNCATED)] + TRUNCATED
    frames = [FrameVars(file=_text(f["file"]), function=_text(f["function"]), line=f.get("line") or None,
                        vars=dict(f["vars"])) for f in alert.get("frame_vars", ()) if f.get("vars")]  # fmt: skip
    stack_trace, title = _text(alert.get("stack_trace")), _text(alert["title"])
    payload = AlertReceivedPayload(
        source="generic", status="firing", service=_text(alert["service"]), title=title,
        description=_text(alert.get("description", "")), severity_hint=_text(alert.get("severity")),
        labels={_text(str(k)): _text(str(v)) for k, v in alert.get("labels", {}).items()}, stack_trace=stack_trace,
        commit=_text(alert.get("commit")), fingerprint=_text(alert.get("fingerprint")),
        fingerprint_inputs={"title": title}, kind="error" if stack_trace else None, occurred_at=received_at,
        delivery_id=delivery, raw=raw, frame_vars=frames[-50:],
    )  # fmt: skip
    return AlertReceived.create(payload, source="ingest", team=team)


def _text(value: Any) -> Any:
    """A string stripped as ingest strips the generic alert's text (anything else as it is)."""
    return value.strip() if isinstance(value, str) else value


def incident_state(events: Iterable[Event[Any]]) -> str:
    """The state the incident's events bring it to (the state machine's projection; "" before incident.opened)."""
    state = ""
    for event in events:
        state = next_state(state, event.type)
    return state


async def through_the_chain(
    settings: Settings, home: Path, built: Sequence[BuiltScenario], run: str, timeout_s: float, probe: Path | None,
    say: Say,
) -> list[Tracked]:  # fmt: skip
    """Every scenario's alert through triage, diagnosis, fixgen and review in this process; the approved fixes'
    branches pushed; raises ChainsMissing when a stage's replay step cannot be loaded."""
    problems: list[str] = []
    steps = load_steps(problems.append)
    missing = [s for s in STAGES if s not in steps]
    if missing or problems:
        why = "; ".join(problems) or f"no replay step for {', '.join(missing)}"
        raise ChainsMissing(f"the stages cannot run in-process ({why}); reinstall pagerpatch (pip install -e .) "
                            "or run with --stack")  # fmt: skip
    work, scm_root = home / "chains", home / "scm"
    for folder in (work, scm_root):
        await asyncio.to_thread(shutil.rmtree, folder, True)
    repos = [b.repo_config() for b in built]
    names = {r.name for r in repos}
    chained = settings.model_copy(update={"home": home, "repos": [
        *(r for r in settings.repos if r.name not in names), *repos]})  # fmt: skip
    scm = LocalGitScm(home)
    say(f"== running {len(built)} alert(s) through triage, diagnosis, fixgen and review in this process "
        f"(no bus; {AT_ONCE} at a time, work folder {work})")  # fmt: skip
    slots = asyncio.Semaphore(AT_ONCE)

    async def one(b: BuiltScenario) -> Tracked:
        async with slots:
            t = await _scenario(b, steps, chained, repos, work / b.scenario.name, run, timeout_s, scm)
        assert t.finished_at is not None
        say(f"   {b.scenario.label}: {t.problem or t.state} after {t.finished_at - t.posted_at:.1f}s")
        return t

    try:
        with importable(probe):
            return list(await asyncio.gather(*(one(b) for b in built)))
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _scenario(
    b: BuiltScenario, steps: Mapping[str, ReplayStep], settings: Settings, repos: Sequence[RepoConfig],
    workdir: Path, run: str, timeout_s: float, scm: LocalGitScm,
) -> Tracked:  # fmt: skip
    alert = alert_event(b.alert(run), delivery=f"eval-fixes-{run}-{b.scenario.name}", team=settings.team,
                        received_at=datetime.now(UTC))  # fmt: skip
    t = Tracked(b, alert.event_id, time.monotonic())
    try:
        outcomes = await asyncio.wait_for(
            run_chain(steps, [alert], settings, incident_id=uuid.uuid4(), repos=repos, workdir=workdir), timeout_s
        )
    except TimeoutError:
        t.problem, t.finished_at = f"no outcome within {timeout_s:.0f}s", time.monotonic()
        return t
    events = [e for o in outcomes for e in o.outputs]
    opened = next((e for e in events if isinstance(e, IncidentOpened) and e.causation_id == alert.event_id), None)
    failure = _failure(outcomes)
    if opened is None or opened.incident_id is None:
        suppressed = any(e.type == "alert.suppressed" and e.causation_id == alert.event_id for e in events)
        t.problem = "triage suppressed the alert" if suppressed else failure or "no incident opened"
        t.finished_at = time.monotonic()
        return t
    t.incident = opened.incident_id
    approved = next((e for e in events if isinstance(e, FixApproved)), None)
    if approved is not None:
        try:
            events.append(await asyncio.to_thread(_push, scm, repos, approved, opened.incident_id))
        except Exception as exc:  # git refused the patch: reported like a pull request that could not be opened
            failure = f"the pull request could not be pushed: {type(exc).__name__}: {exc}"
    t.events = [e for e in events if e.incident_id == t.incident]
    t.state = incident_state(t.events)
    t.problem = failure
    t.done_at = t.finished_at = time.monotonic()
    return t


def _failure(outcomes: Sequence[StageOutcome]) -> str:
    """The first stage failure the chain noted ("" when none failed)."""
    for o in outcomes:
        for note in o.notes:
            if note.startswith("failed:"):
                return f"{o.stage} {note}"
    return ""


def _push(scm: LocalGitScm, repos: Sequence[RepoConfig], approved: FixApproved, incident: uuid.UUID) -> PrOpened:
    """Push the approved fix as the incident's branch (what the notifier does for a local-git repository) and the
    pr.opened that records it."""
    fix = approved.payload.fix
    repo = next(r for r in repos if r.name == fix.repo)
    branch = f"{BRANCH_PREFIX}{incident}"
    message = f"{fix.commit_message.strip()}\n\npagerpatch incident {incident}\n"
    title = f"fix: {fix.diagnosis.title or message.splitlines()[0]}"[:200]
    pushed = scm.push_fix(repo, branch=branch, base_commit=fix.base_commit, patch=fix.patch, message=message,
                          when=approved.occurred_at)  # fmt: skip
    payload = PrOpenedPayload(repo=repo.name, provider=scm.provider, branch=branch, head_commit=pushed.head_commit,
                              title=title, url=pushed.url)  # fmt: skip
    return approved.derive(PrOpened, payload, stage=PR_STAGE)

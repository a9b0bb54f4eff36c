"""`pagerpatch replay INCIDENT`: the incident's recorded inputs through triage, diagnosis, fixgen and review again
with changed configuration, in isolation, and the outcomes compared (docs/replay.md)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import nats
import typer

from pagerpatch.cli.app import connected, console, current_settings, err, running_endpoints
from pagerpatch.git.repos import all_repos
from pagerpatch.ops.endpoints import Endpoints
from pagerpatch.replay import StageOutcome, load_steps, run_chain
from pagerpatch.replay.config import config_file, governance_dir, with_governance
from pagerpatch.replay.outcome import Comparison, compare, render, summarize, to_json
from pagerpatch.replay.recorded import Recording, load_recording
from pagerpatch.settings import ConfigError, Settings, load_settings

NATS_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Replayed:
    recording: Recording
    stages: list[StageOutcome]
    comparison: Comparison


def replay(
    incident: Annotated[str, typer.Argument(help="Incident id (or unambiguous prefix).")],
    config: Annotated[
        Path | None,
        typer.Option(help="A pagerpatch.yaml to replay with (default: the one in force).", exists=True, dir_okay=False),
    ] = None,
    agents: Annotated[
        Path | None,
        typer.Option(help="An agents.yaml in place of the governance folder's.", exists=True, dir_okay=False),
    ] = None,
    policies: Annotated[
        Path | None,
        typer.Option(help="A policies.yaml in place of the governance folder's.", exists=True, dir_okay=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Re-run an incident with changed configuration, in isolation, and print what changed.

    The incident's recorded alerts go through triage, diagnosis, fixgen (its tests in the sandbox) and review with
    the given pagerpatch.yaml / agents.yaml / policies.yaml; nothing is published, no live row is written and
    nothing is sent outside (docs/replay.md)."""
    live = current_settings()
    ep = running_endpoints(live)
    (live.state_dir / "replay").mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=live.state_dir / "replay"))
    try:
        with config_file(config):
            changed = _replay_settings(workdir, agents, policies)
            result = asyncio.run(_replay(ep, incident, changed, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if result is None:
        err.print(f"no incident matches {incident!r}", style="red", markup=False)
        raise typer.Exit(1)
    setup = {"config": str(config) if config else None, "agents": str(agents) if agents else None,
             "policies": str(policies) if policies else None}  # fmt: skip
    if as_json:
        print(json.dumps(replay_document(result, setup), default=str))
        return
    for line in replay_text(result, setup):
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _replay_settings(workdir: Path, agents: Path | None, policies: Path | None) -> Settings:
    """The settings the replay runs with (the file `--config` names is in force here), or exit 2 saying why not."""
    try:
        changed = load_settings()
        if agents or policies:
            folder = governance_dir(changed.llm.config_dir, workdir / "config", agents=agents, policies=policies)
            changed = with_governance(changed, folder)
    except ConfigError as exc:
        err.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    return changed


async def _replay(ep: Endpoints, incident: str, settings: Settings, workdir: Path) -> Replayed | None:
    async with connected(ep.database_url) as conn:
        try:
            nc = await nats.connect(ep.nats_url, name="pagerpatch-cli-replay", allow_reconnect=False,
                                    connect_timeout=NATS_CONNECT_TIMEOUT_S)  # fmt: skip
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            err.print(f"NATS at {ep.nats_url} is not reachable ({exc}); is the stack running?", style="red",
                      markup=False)  # fmt: skip
            raise typer.Exit(1) from None
        try:
            recording = await load_recording(conn, nc.jetstream(), incident)
        finally:
            await nc.close()
        if recording is None:
            return None
        repos = await all_repos(settings, conn)
    steps = load_steps(report=lambda problem: err.print(problem, style="yellow", markup=False))
    stages = await run_chain(steps, recording.alerts, settings, incident_id=recording.incident.id, repos=repos,
                             workdir=workdir)  # fmt: skip
    outputs = [e for s in stages for e in s.outputs]
    notes = [*recording.notes, *(f"{s.stage}: {n}" for s in stages for n in s.notes)]
    comparison = compare(summarize(recording.outputs, recording.cost_usd),
                         summarize(outputs, sum(s.cost_usd for s in stages)), notes)  # fmt: skip
    return Replayed(recording, stages, comparison)


def _stage_line(s: StageOutcome) -> dict[str, Any]:
    return {"stage": s.stage, "ran": s.ran, "outputs": [e.type for e in s.outputs], "cost_usd": s.cost_usd,
            "notes": list(s.notes)}  # fmt: skip


def replay_document(result: Replayed, setup: dict[str, str | None]) -> dict[str, Any]:
    """`--json`: the incident, what the replay ran with, each stage, and the comparison."""
    inc = result.recording.incident
    return {
        "incident_id": str(inc.id), "title": inc.title, "alerts": len(result.recording.alerts), **setup,
        "stages": [_stage_line(s) for s in result.stages], **to_json(result.comparison),
    }  # fmt: skip


def replay_text(result: Replayed, setup: dict[str, str | None]) -> list[str]:
    inc = result.recording.incident
    given = ", ".join(f"--{k} {v}" for k, v in setup.items() if v) or "the configuration in force"
    lines = [f"replay of incident {inc.id}: {inc.title}",
             f"{len(result.recording.alerts)} recorded alert(s), replayed with {given}", "stages:"]  # fmt: skip
    for s in result.stages:
        did = ", ".join(e.type for e in s.outputs) or "nothing"
        lines.append(f"  {s.stage:<10} {'-> ' + did if s.ran else 'not run'}" + (f"  ${s.cost_usd:.4f}"
                     if s.cost_usd else ""))  # fmt: skip
    lines += [f"note: {n}" for n in result.comparison.notes]
    lines.append("outcome (recorded -> replayed):")
    return [*lines, *render(result.comparison)]

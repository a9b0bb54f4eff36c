"""Triage's replay step (`pagerpatch replay`, entry point group `pagerpatch.replay`): the incident's recorded
alerts through the very use case the service runs, on an in-memory store, with the replay's rules.

Each alert is decided at the time it happened (maintenance windows, dedup and flapping windows read it so). The
store starts empty but for the repositories: the replay sees the incident's own alerts, not the rest of history.
"""

from __future__ import annotations

from pagerpatch.replay.model import ReplayInput, StageOutcome, offline_runtime, repo_for_service, spent
from pagerpatch.settings import Settings
from schemas.events import AlertReceived
from services.triage import usecase
from services.triage.adapters import LlmHint
from services.triage.memory import MemoryTriageStore
from services.triage.ports import NoHint, SoftHint
from services.triage.settings import TriageConfig


async def replay(inputs: ReplayInput, settings: Settings) -> StageOutcome:
    config = TriageConfig.from_settings(settings)
    alerts = [e for e in inputs.events if isinstance(e, AlertReceived)]
    services = {a.payload.service for a in alerts}
    repos = {s: r for s in services if (r := repo_for_service(inputs.repos, settings, s)) is not None}
    store = MemoryTriageStore(repos=repos)
    runtime = offline_runtime(settings) if settings.triage.llm_hint else None
    hint: SoftHint = LlmHint(runtime) if runtime is not None and runtime.enabled else NoHint()
    outputs = []
    for alert in alerts:
        at = alert.payload.occurred_at or alert.occurred_at
        result = await usecase.triage(alert, store, config, hint, at)
        outputs.extend(result.outputs)
    notes = (f"{len(alerts)} alert(s) triaged; {len(store.incidents)} incident(s) opened",)
    return StageOutcome(usecase.STAGE, tuple(outputs), spent(runtime), notes)

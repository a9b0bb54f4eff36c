"""Triage's soft hint through the real agent runtime and the real Anthropic SDK, against the fake Messages API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pagerpatch.settings import TriageSettings
from schemas.events import AlertReceived, AlertReceivedPayload, AlertSuppressed, IncidentOpened, Severity
from services.triage import usecase
from services.triage.adapters import LlmHint, make_hint
from services.triage.memory import MemoryTriageStore
from services.triage.ports import NoHint
from services.triage.settings import TriageConfig
from tests.support.fake_anthropic import FakeAnthropic, rate_limited, tool_use
from tests.support.llm_env import llm_settings

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


def alert(at: float, **fields: Any) -> AlertReceived:
    payload: dict[str, Any] = {"source": "grafana", "service": "orders", "title": "orders processed low",
                               "kind": "metric", "occurred_at": T0 + timedelta(seconds=at)}  # fmt: skip
    payload.update(fields)
    return AlertReceived.create(AlertReceivedPayload(**payload), source="ingest", team="shop")


async def triage(e: AlertReceived, store: MemoryTriageStore, hint: Any) -> usecase.Result:
    cfg = TriageConfig(rules=TriageSettings())
    return await usecase.triage(e, store, cfg, hint, e.payload.occurred_at or T0)


def hint_for(fake: FakeAnthropic, **llm: Any) -> Any:
    return make_hint(llm_settings(fake.url, SHIPPED_CONFIG, **llm), None)


async def test_an_undecided_alert_asks_the_cheap_model_once_and_its_verdict_is_a_recorded_reason(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.script(
        tool_use("emit_triage_verdict", {"classification": "noise", "severity": "P3", "reasons": ["nightly batch dip"]})
    )
    hint = hint_for(fake_anthropic)
    assert isinstance(hint, LlmHint)
    store = MemoryTriageStore()
    result = await triage(alert(0, description="password=hunter2hunter2 in the logs"), store, hint)

    assert result.decision.classification == "noise"
    assert "llm_hint" in result.decision.rules
    assert any("nightly batch dip" in r for r in result.decision.reasons)
    [suppressed] = result.outputs
    assert isinstance(suppressed, AlertSuppressed) and suppressed.payload.reason == "noise"
    [request] = fake_anthropic.requests
    body = request.body
    assert body["model"] == "claude-haiku-4-5"  # classify is a cheap step
    assert body["tool_choice"] == {"type": "tool", "name": "emit_triage_verdict"}
    assert "orders processed low" in request.text
    assert "hunter2hunter2" not in request.text  # redacted before it reached the model


async def test_rules_decide_without_the_model_and_a_hard_block_is_never_asked(fake_anthropic: FakeAnthropic) -> None:
    hint = hint_for(fake_anthropic)
    store = MemoryTriageStore()
    critical = await triage(alert(0, severity_hint="critical", title="checkout 5xx"), store, hint)
    [opened] = critical.outputs
    assert isinstance(opened, IncidentOpened) and opened.payload.severity in (Severity.P0, Severity.P1)
    duplicate = await triage(alert(10, severity_hint="critical", title="checkout 5xx"), store, hint)
    assert duplicate.decision.classification == "duplicate"
    noise = await triage(alert(20, title="disk metric", noise_hint="insufficient_data"), store, hint)
    assert noise.decision.classification == "noise"
    assert fake_anthropic.requests == []


async def test_a_model_that_stays_unavailable_leaves_the_documented_default_and_says_so(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.always(rate_limited(0.01))
    hint = hint_for(fake_anthropic, max_retries=1)
    result = await triage(alert(0), MemoryTriageStore(), hint)
    assert result.decision.classification == "real"  # triage.undecided defaults to open
    assert usecase.NO_VERDICT in result.decision.reasons
    assert len(fake_anthropic.requests) == 2  # the call and its one retry, then the default


def test_no_api_key_means_no_model_hint() -> None:
    from pagerpatch.settings import Settings

    assert isinstance(make_hint(Settings(), None), NoHint)

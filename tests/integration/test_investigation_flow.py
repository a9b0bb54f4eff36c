"""The investigation agent's loop around the model's findings and its observability tools: findings not marked
ready go on investigating within the step budget, and prometheus_query's default range is the hour before the
incident's time (not the time the diagnosis happens to run). Real git, runtime and SDK against the fake Messages
API; a real HTTP fake Prometheus answering in the API's format."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pagerpatch.settings.knowledge import ObservabilitySettings
from tests.integration.test_investigation import Shop, findings, prepared, report, requests_of
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_observability import PROMETHEUS_PATH, FakeObservability

pytestmark = [pytest.mark.integration, pytest.mark.skipif(shutil.which("git") is None, reason="no git")]


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path)


async def test_findings_not_marked_ready_go_on_investigating_within_the_step_budget(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    not_ready = {"ready": False, "hypothesis": "something in pricing", "open_questions": ["which commit?"]}
    fake_anthropic.script(
        *prepared(),
        fa.tool_use("emit_findings", not_ready),
        fa.tool_use("git_blame", {"path": "shop/pricing.py", "line": 6}),
        findings(shop.bug),
        report(shop.bug),
    )
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic))

    r = payload.report
    assert payload.strategy == "llm-investigation" and r is not None
    assert (r.steps, r.tool_calls) == (3, 1)  # one budget of 8 steps across both rounds
    turns = requests_of(fake_anthropic, "emit_findings")
    assert len(turns) == 3
    assert "not marked ready: go on investigating (7 step(s) left)" in turns[1].text
    assert "last changed by" in turns[2].text  # the blame asked for after the nudge ran
    assert "step budget ran out" not in requests_of(fake_anthropic, "emit_report_draft")[0].text


async def test_findings_never_ready_stop_at_the_step_budget_and_the_report_knows(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    not_ready = fa.tool_use("emit_findings", {"ready": False, "hypothesis": "unsure"})
    fake_anthropic.script(*prepared(), *[not_ready] * 8, report(shop.bug))
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic))

    assert payload.report is not None and payload.report.steps == 8
    assert len(requests_of(fake_anthropic, "emit_findings")) == 8  # never past the budget
    assert "step budget ran out" in requests_of(fake_anthropic, "emit_report_draft")[0].text


async def test_prometheus_query_defaults_to_the_hour_before_the_incident(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    opened = datetime(2024, 6, 3, 12, 30, tzinfo=UTC)
    with FakeObservability() as prometheus:
        fake_anthropic.script(
            *prepared(),
            fa.tool_use("prometheus_query", {"query": "sum by (code) (rate(http_requests_total[5m]))"}),
            findings(shop.bug),
            report(shop.bug),
        )
        obs = ObservabilitySettings(prometheus_url=prometheus.url)
        payload = await shop.diagnose(shop.diagnosis(fake_anthropic, obs=obs), at=opened)

    [seen] = prometheus.seen(PROMETHEUS_PATH)
    assert (seen.params["start"], seen.params["end"]) == ("2024-06-03T11:30:00Z", "2024-06-03T12:30:00Z")
    turns = requests_of(fake_anthropic, "emit_findings")
    offered = [t["name"] for t in turns[0].body["tools"]]
    assert "prometheus_query" in offered and "loki_query" not in offered  # only what is configured
    assert "step 30s: 2 series" in turns[1].text  # the summary of the fake's answer reached the model
    assert payload.report is not None and payload.report.tool_calls == 1

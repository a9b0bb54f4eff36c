"""prometheus_query and loki_query over real HTTP against a fake Prometheus/Loki answering in the APIs' formats:
parameters and auth headers sent, compact summaries, every error shape as a tool error text, and the tools are
only offered to the model when their URL is configured."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from pagerpatch.llm import LlmRuntime, LoopResult, ToolRegistry
from pagerpatch.llm.config import ToolSpec
from pagerpatch.llm.observability_tools import loki_query, prometheus_query
from pagerpatch.llm.registry import ToolContext
from pagerpatch.settings import Settings
from pagerpatch.settings.knowledge import ObservabilitySettings
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_observability import (
    LOKI_PATH,
    PROMETHEUS_PATH,
    FakeObservability,
    fixture_text,
    json_answer,
    text_answer,
)
from tests.support.llm_env import llm_settings, write_config

pytestmark = pytest.mark.integration

REPO_TOOLS = Path(__file__).resolve().parents[2] / "config" / "tools.yaml"
ALERT_AT = datetime(2024, 6, 3, 12, 30, tzinfo=UTC)


@pytest.fixture
def fake_observability() -> Iterator[FakeObservability]:
    """A fake Prometheus + Loki of this test alone."""
    with FakeObservability() as server:
        yield server


def settings_for(url: str | None, loki: str | None = None, **kw: Any) -> Settings:
    obs = {"prometheus_url": url, "loki_url": loki, **kw.pop("observability", {})}
    return Settings(observability=obs, **kw)


def ctx(name: str = "prometheus_query", now: datetime | None = ALERT_AT) -> ToolContext:
    spec = ToolSpec(description="d", owner="tests")
    return ToolContext("diagnosis", name, None, None, spec, extra={"now": now} if now else {})


# ---------------------------------------------------------------- prometheus_query
async def test_prometheus_range_query_sends_the_api_parameters_and_the_bearer_token(
    fake_observability: FakeObservability,
) -> None:
    s = settings_for(fake_observability.url, prometheus_token="prom-secret-token")
    out = await prometheus_query('sum by (code) (rate(http_requests_total{service="checkout"}[5m]))', s, ctx())
    assert not out.is_error
    [seen] = fake_observability.seen(PROMETHEUS_PATH)
    assert seen.method == "GET"
    assert seen.headers["authorization"] == "Bearer prom-secret-token"
    assert seen.params == {
        "query": 'sum by (code) (rate(http_requests_total{service="checkout"}[5m]))',
        "start": "2024-06-03T11:30:00Z",  # an hour before the alert's time by default
        "end": "2024-06-03T12:30:00Z",
        "step": "30s",  # the hour over 120 points
    }
    lines = out.text.splitlines()
    assert lines[0].endswith("step 30s: 2 series")
    errors = next(line for line in lines if 'code="500"' in line)
    assert errors.startswith('http_requests_total{code="500", method="POST", service="checkout"}: 8 points')
    assert "max 1.5 at 2024-06-03T12:26:00Z" in errors and "last 1.45" in errors
    assert "trend: 0 0 0.05 0.9 1.4 1.3 1.5 1.45" in out.text
    assert "NaN" in out.text  # the 200s series holds a NaN sample: shown in the trend, left out of the stats
    assert out.facts is not None and any("max 1.5 at 2024-06-03T12:26:00Z" in f for f in out.facts)
    assert "prom-secret-token" not in out.text


async def test_explicit_times_relative_times_and_a_long_query_sent_as_a_post(
    fake_observability: FakeObservability,
) -> None:
    s = settings_for(fake_observability.url)
    long_query = "sum(rate(http_requests_total{" + ",".join(f'l{i}="{i}"' for i in range(200)) + "}[5m]))"
    out = await prometheus_query(long_query, s, ctx(), start="now-15m", end="2024-06-03T12:30:00+00:00", step="1m")
    assert not out.is_error
    [seen] = fake_observability.seen(PROMETHEUS_PATH)
    assert seen.method == "POST" and seen.params["query"] == long_query
    assert (seen.params["start"], seen.params["end"], seen.params["step"]) == (
        "2024-06-03T12:15:00Z",
        "2024-06-03T12:30:00Z",
        "60s",
    )
    assert "authorization" not in seen.headers  # no token configured: no header


async def test_bad_arguments_are_a_tool_error_and_nothing_is_sent(fake_observability: FakeObservability) -> None:
    s = settings_for(fake_observability.url)
    bad_time = await prometheus_query("up", s, ctx(), start="yesterday-ish")
    backwards = await prometheus_query("up", s, ctx(), start="now", end="now-1h")
    bad_step = await prometheus_query("up", s, ctx(), step="5 minutes")
    assert bad_time.is_error and "not a time: 'yesterday-ish'" in bad_time.text
    assert backwards.is_error and "must be before end" in backwards.text
    assert bad_step.is_error and "not a duration: '5 minutes'" in bad_step.text
    assert fake_observability.requests == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            json_answer("prometheus_error_bad_data.json", status=400),
            'prometheus answered 400 (bad_data): invalid parameter "query": 1:33: parse error',
        ),
        (
            json_answer("prometheus_error_timeout.json", status=503),
            "prometheus answered 503 (timeout): query timed out in expression evaluation",
        ),
        (
            json_answer({"status": "error", "errorType": "execution", "error": "many-to-many matching"}),
            "prometheus answered 200 (execution): many-to-many matching",
        ),
        (text_answer("Unauthorized", 401), "prometheus answered 401: Unauthorized (check PAGERPATCH_PROMETHEUS_TOKEN)"),
        (text_answer("<html>bad gateway</html>", 502), "prometheus answered 502: <html>bad gateway</html>"),
        (text_answer("not json", 200), "prometheus answered 200 with something that is not its JSON API"),
    ],
)
async def test_api_errors_become_a_clear_tool_error(
    fake_observability: FakeObservability, answer: Any, expected: str
) -> None:
    fake_observability.script(PROMETHEUS_PATH, answer)
    out = await prometheus_query("up{", settings_for(fake_observability.url), ctx())
    assert out.is_error
    assert out.text.startswith(expected), out.text


async def test_a_slow_or_unreachable_prometheus_is_a_tool_error(fake_observability: FakeObservability) -> None:
    fake_observability.script(PROMETHEUS_PATH, json_answer("prometheus_query_range.json", delay_s=2.0))
    slow = await prometheus_query("up", settings_for(fake_observability.url, observability={"timeout_s": 0.3}), ctx())
    assert slow.is_error and slow.text.startswith("prometheus did not answer within 0.3s (observability.timeout_s)")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = await prometheus_query("up", settings_for(f"http://user:pw@127.0.0.1:{port}"), ctx())
    assert down.is_error and down.text.startswith(f"could not reach prometheus at http://127.0.0.1:{port}/api/v1/")
    assert "pw" not in down.text


# ---------------------------------------------------------------- loki_query
async def test_loki_streams_become_lines_with_each_stream_named_once(fake_observability: FakeObservability) -> None:
    s = settings_for(None, fake_observability.url, loki_token="loki-secret", observability={"loki_tenant": "shop"})
    out = await loki_query('{service="checkout"} |= "KeyError"', s, ctx("loki_query"), limit=50)
    assert not out.is_error
    [seen] = fake_observability.seen(LOKI_PATH)
    assert seen.headers["authorization"] == "Bearer loki-secret" and seen.headers["x-scope-orgid"] == "shop"
    assert seen.params == {
        "query": '{service="checkout"} |= "KeyError"',
        "start": str(int(datetime(2024, 6, 3, 11, 30, tzinfo=UTC).timestamp() * 1e9)),  # nanoseconds
        "end": str(int(ALERT_AT.timestamp() * 1e9)),
        "limit": "50",
        "direction": "backward",
    }
    lines = out.text.splitlines()
    assert lines[0].endswith(": 3 lines from 2 streams")
    assert lines[1] == '[s1] {env="production", level="error", pod="checkout-7d9f-abcde", service="checkout"}'
    assert lines[3:] == [  # newest first (backward), the stream by its short name
        "2024-06-03T12:23:05.123Z s1 POST /checkout 500 KeyError: 'SPRING5' in shopcart.pricing.find_coupon",
        "2024-06-03T12:22:30.500Z s2 POST /checkout 500 KeyError: 'OLDNEWS' in shopcart.pricing.find_coupon",
        "2024-06-03T12:22:01.000Z s1 POST /checkout 500 KeyError: 'SPRING5' in shopcart.pricing.find_coupon",
    ]
    assert out.facts is not None
    assert out.facts[0].startswith("3 log lines from 2 streams between 2024-06-03T12:22:01Z and 2024-06-03T12:23:05Z")
    assert "2x: POST /checkout 500 KeyError: 'SPRING5' in shopcart.pricing.find_coupon" in out.facts


async def test_loki_forward_direction_limit_and_a_metric_query(fake_observability: FakeObservability) -> None:
    s = settings_for(None, fake_observability.url, observability={"max_lines": 2})
    fwd = await loki_query('{service="checkout"}', s, ctx("loki_query"), limit=500, direction="forward")
    assert fake_observability.seen(LOKI_PATH)[0].params["limit"] == "2"  # capped by observability.max_lines
    body = fwd.text.splitlines()
    assert "12:22:01.000Z" in body[3] and "12:23:05.123Z" in body[-2]  # oldest first
    assert body[-1] == "[limit of 2 lines reached: narrow the query or the range to see others]"
    fake_observability.script(LOKI_PATH, json_answer("loki_query_range_matrix.json"))
    metric = await loki_query('sum(count_over_time({service="checkout"} |= "KeyError" [1m]))', s, ctx("loki_query"))
    assert not metric.is_error and ": 1 series" in metric.text.splitlines()[0]
    assert "max 52 at 2024-06-03T12:24:00Z" in metric.text


async def test_loki_errors_plain_text_and_json_become_tool_errors(fake_observability: FakeObservability) -> None:
    s = settings_for(None, fake_observability.url)
    fake_observability.script(
        LOKI_PATH,
        text_answer(fixture_text("loki_error_bad_query.txt"), 400),
        json_answer({"status": "error", "errorType": "bad_data", "error": "max entries limit exceeded"}, 400),
    )
    text_err = await loki_query("{service=checkout}", s, ctx("loki_query"))
    json_err = await loki_query('{service="checkout"}', s, ctx("loki_query"))
    assert text_err.is_error and text_err.text == (
        "loki answered 400: parse error at line 1, col 21: syntax error: unexpected IDENTIFIER, expecting STRING"
    )
    assert json_err.is_error and json_err.text == "loki answered 400 (bad_data): max entries limit exceeded"
    wrong = await loki_query('{service="checkout"}', s, ctx("loki_query"), direction="sideways")
    assert wrong.is_error and "direction" in wrong.text and len(fake_observability.requests) == 2


# ---------------------------------------------------------------- offered only when configured (runtime, audit)
def observability_config(root: Path) -> Path:
    shipped = yaml.safe_load(REPO_TOOLS.read_text())["tools"]
    tools = {n: shipped[n] for n in ("prometheus_query", "loki_query")}
    agents = {
        "investigator": {
            "system_prompts": ["prompts/investigator.md"],
            "tools": ["prometheus_query", "loki_query"],
            "permissions": ["observability:read"],
        }
    }
    return write_config(root, tools=tools, agents=agents)


async def test_only_configured_tools_are_offered_and_an_unconfigured_one_is_refused(
    fake_anthropic: FakeAnthropic, fake_observability: FakeObservability, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    cfg = observability_config(tmp_path / "cfg")
    settings = llm_settings(fake_anthropic.url, cfg).model_copy(
        update={"observability": ObservabilitySettings(prometheus_url=fake_observability.url)}  # no Loki
    )
    registry = ToolRegistry(settings)
    rt = LlmRuntime.create(settings, pool, registry)
    assert registry.unavailable == ["loki_query"]
    fake_anthropic.script(
        fa.tool_uses(
            [
                ("prometheus_query", {"query": 'rate(http_requests_total{code="500"}[5m])'}, "p1"),
                ("loki_query", {"query": '{service="checkout"}'}, "l1"),
            ]
        ),
        fa.text("done"),
    )
    result: LoopResult[Any] = await rt.run_tools(
        agent="investigator", step="investigate", prompt="go", tool_context={"now": ALERT_AT}
    )
    assert [t["name"] for t in fake_anthropic.requests[0].body["tools"]] == ["prometheus_query"]
    assert [(c.name, c.outcome) for c in result.tool_calls] == [("prometheus_query", "ok"), ("loki_query", "refused")]
    assert [r.path for r in fake_observability.requests] == [PROMETHEUS_PATH]  # Loki never called
    assert "tool 'loki_query' is not configured in this deployment" in result.tool_calls[1].content  # says why
    assert "max 1.5 at 2024-06-03T12:26:00Z" in result.tool_calls[0].content
    rows = await pool.fetch("SELECT action, details FROM audit_log")  # the refusal is written first
    assert sorted((r["action"], r["details"]["tool"]) for r in rows) == [
        ("tool.called", "prometheus_query"),
        ("tool.refused", "loki_query"),
    ]


async def test_no_observability_configured_offers_neither_tool(tmp_path: Path) -> None:
    cfg = observability_config(tmp_path / "cfg")
    registry = ToolRegistry(Settings())
    from pagerpatch.llm.config import load_governance

    registry.bind(load_governance(cfg))
    assert registry.unavailable == ["loki_query", "prometheus_query"]
    assert registry.get("prometheus_query") is None and registry.get("loki_query") is None
    assert registry.names == ["loki_query", "prometheus_query"]  # still declared and bound
    assert registry.why_not("loki_query") == "tool 'loki_query' is not configured in this deployment"

"""Kernel pure functions: retry/restart backoff, consumer overrides, NATS configs, settings errors (no I/O but tmp)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from nats.js.api import AckPolicy, DeliverPolicy

from pagerpatch.kernel.bus import consumer_config, effective_consumers, stream_config
from pagerpatch.kernel.runtime import retry_delay
from pagerpatch.ops.supervisor import restart_delay
from pagerpatch.settings import BusSettings, ConfigError, ConsumerOverride, load_settings
from schemas import streams
from schemas.streams import ConsumerDef, StreamDef

# ---------------------------------------------------------------- backoff


@pytest.mark.parametrize(
    ("deliveries", "base", "cap", "expected"),
    [
        (1, 1.0, 60.0, 1.0),
        (2, 1.0, 60.0, 2.0),
        (3, 1.0, 60.0, 4.0),
        (6, 1.0, 60.0, 32.0),
        (7, 1.0, 60.0, 60.0),  # 64 capped
        (50, 1.0, 60.0, 60.0),
        (0, 1.0, 60.0, 1.0),  # deliveries < 1 treated as 1
        (-3, 2.0, 60.0, 2.0),
        (3, 0.5, 60.0, 2.0),
        (4, 0.0, 60.0, 0.0),
        (10, 1.0, 0.0, 0.0),
        (2, 10.0, 15.0, 15.0),
    ],
)
def test_retry_delay(deliveries: int, base: float, cap: float, expected: float) -> None:
    delay = retry_delay(deliveries, base, cap)
    assert isinstance(delay, float)
    assert delay == expected


@pytest.mark.parametrize(
    ("crashes", "expected"),
    [
        (0, 0.5),
        (1, 0.5),
        (2, 1.0),
        (3, 2.0),
        (4, 4.0),
        (7, 5.0),  # 32 capped at 5: a service is back soon after what made it crash is
        (100, 5.0),
    ],
)
def test_restart_delay_defaults(crashes: int, expected: float) -> None:
    assert restart_delay(crashes) == expected


@pytest.mark.parametrize(
    ("crashes", "base", "cap", "expected"),
    [
        (1, 2.0, 100.0, 2.0),
        (4, 2.0, 100.0, 16.0),
        (10, 2.0, 100.0, 100.0),
    ],
)
def test_restart_delay_custom(crashes: int, base: float, cap: float, expected: float) -> None:
    assert restart_delay(crashes, base, cap) == expected


@pytest.mark.parametrize("fn", ["restart_delay", "retry_delay"])
def test_backoff_stays_capped_for_huge_counts(fn: str) -> None:
    if fn == "restart_delay":
        assert restart_delay(1025) == 5.0
    else:
        assert retry_delay(1025, 1.0, 60.0) == 60.0


# ---------------------------------------------------------------- effective_consumers

DEFS = (
    ConsumerDef(durable="triage", service="triage", subject="pagerpatch.alert.received"),
    ConsumerDef(durable="fixgen", service="fixgen", subject="pagerpatch.diagnosis.ready", ack_wait_s=60.0),
    ConsumerDef(durable="review", service="review", subject="pagerpatch.fix.validated", max_deliver=7),
)


def bus(**consumers: ConsumerOverride) -> BusSettings:
    return BusSettings(consumers=consumers)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # (ack_wait_s, max_deliver, backoff_s) per durable, in DEFS order
        (bus(), [(30.0, 5, ()), (60.0, 5, ()), (30.0, 7, ())]),
        (bus(fixgen=ConsumerOverride(ack_wait_s=300)), [(30.0, 5, ()), (300.0, 5, ()), (30.0, 7, ())]),
        (bus(**{"*": ConsumerOverride(max_deliver=9)}), [(30.0, 9, ()), (60.0, 9, ()), (30.0, 9, ())]),
        (
            bus(**{"*": ConsumerOverride(max_deliver=9, ack_wait_s=5)}, review=ConsumerOverride(max_deliver=3)),
            [(5.0, 9, ()), (5.0, 9, ()), (5.0, 3, ())],  # durable-specific wins over "*", the rest of "*" stays
        ),
        (
            bus(triage=ConsumerOverride(backoff_s=(1.0, 5.0))),
            [(30.0, 5, (1.0, 5.0)), (60.0, 5, ()), (30.0, 7, ())],
        ),
        (bus(nobody=ConsumerOverride(max_deliver=2)), [(30.0, 5, ()), (60.0, 5, ()), (30.0, 7, ())]),
    ],
)
def test_effective_consumers(settings: BusSettings, expected: list[tuple[float, int, tuple[float, ...]]]) -> None:
    out = effective_consumers(settings, DEFS)
    assert [c.durable for c in out] == ["triage", "fixgen", "review"]
    assert [(c.ack_wait_s, c.max_deliver, c.backoff_s) for c in out] == expected
    for before, after in zip(DEFS, out, strict=True):
        assert (after.service, after.subject, after.stream) == (before.service, before.subject, before.stream)


def test_untouched_consumers_are_the_same_objects() -> None:
    out = effective_consumers(bus(fixgen=ConsumerOverride(max_deliver=2)), DEFS)
    assert out[0] is DEFS[0]
    assert out[2] is DEFS[2]
    assert out[1] is not DEFS[1]


def test_override_breaking_a_consumer_invariant_is_rejected() -> None:
    with pytest.raises(ValueError, match="backoff must have fewer entries than max_deliver"):
        effective_consumers(bus(triage=ConsumerOverride(max_deliver=2, backoff_s=(1.0, 2.0))), DEFS)


def test_effective_consumers_defaults_to_the_real_definitions() -> None:
    assert effective_consumers(BusSettings()) == list(streams.CONSUMERS)


# ---------------------------------------------------------------- consumer_config / stream_config


@pytest.mark.parametrize(
    ("c", "backoff"),
    [
        (ConsumerDef(durable="triage", service="triage", subject="pagerpatch.alert.received"), None),
        (
            ConsumerDef(
                durable="fixgen",
                service="fixgen",
                subject="pagerpatch.diagnosis.ready",
                ack_wait_s=90.0,
                max_deliver=4,
                backoff_s=(1.0, 10.0, 30.0),
                max_ack_pending=8,
            ),
            [1.0, 10.0, 30.0],
        ),
    ],
)
def test_consumer_config(c: ConsumerDef, backoff: list[float] | None) -> None:
    cfg = consumer_config(c)
    assert cfg.durable_name == c.durable
    assert cfg.name == c.durable
    assert cfg.ack_wait == c.ack_wait_s
    assert cfg.max_deliver == c.max_deliver
    assert cfg.filter_subject == c.subject
    assert cfg.max_ack_pending == c.max_ack_pending
    assert cfg.backoff == backoff
    assert cfg.ack_policy == AckPolicy.EXPLICIT
    assert cfg.deliver_policy == DeliverPolicy.ALL
    assert cfg.description == f"{c.service} reads {c.subject}"


@pytest.mark.parametrize(
    ("s", "settings", "window"),
    [
        (streams.EVENTS, BusSettings(duplicate_window_s=300), 300.0),  # the events stream takes the setting
        (streams.EVENTS, BusSettings(), 120.0),
        (StreamDef(name=streams.EVENTS_STREAM, subjects=("a.>",), max_age_s=60.0), BusSettings(), 60.0),  # <= age
        (
            StreamDef(name="OTHER", subjects=("o.>",), duplicate_window_s=45.0),
            BusSettings(duplicate_window_s=300),
            45.0,
        ),
    ],
)
def test_stream_config(s: StreamDef, settings: BusSettings, window: float) -> None:
    cfg = stream_config(s, settings)
    assert cfg.name == s.name
    assert cfg.subjects == list(s.subjects)
    assert cfg.max_age == s.max_age_s
    assert cfg.duplicate_window == window
    assert cfg.num_replicas == settings.replicas
    assert cfg.description == (s.description or None)


def test_stream_config_replicas() -> None:
    assert stream_config(streams.EVENTS, BusSettings(replicas=3)).num_replicas == 3


# ---------------------------------------------------------------- load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PAGERPATCH_* / NATS_URL / DATABASE_URL from the outside, and a cwd without pagerpatch.yaml."""
    for key in list(os.environ):
        if key.startswith("PAGERPATCH_") or key in ("NATS_URL", "DATABASE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAGERPATCH_HOME", str(tmp_path / "home"))
    return tmp_path


BAD_YAML = """\
log_level: DEBUG
bus:
  duplicate_window_s: 30
policy:
  protected_paths:
    - "deploy/**"
  max_diff_lines: -1
unknown_top: 1
sandbox:
  backend: docker
repos:
  - name: shop
    path: /srv/shop
  - name: "bad name!"
    path: /srv/other
"""


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (7, "policy.max_diff_lines"),
        (8, "unknown_top"),
        (10, "sandbox.backend"),
        (14, "repos.1.name"),
    ],
)
def test_config_error_names_file_line_and_field(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, line: int, field: str
) -> None:
    path = clean_env / "pagerpatch.yaml"
    path.write_text(BAD_YAML)
    monkeypatch.setenv("PAGERPATCH_CONFIG_FILE", str(path))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert f"{path}:{line}: {field}: " in message


def test_config_error_lists_only_bad_fields(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = clean_env / "pagerpatch.yaml"
    path.write_text(BAD_YAML)
    monkeypatch.setenv("PAGERPATCH_CONFIG_FILE", str(path))
    with pytest.raises(ConfigError) as info:
        load_settings()
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 4
    assert not any("log_level" in x or "duplicate_window_s" in x or "repos.0" in x for x in lines)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("policy: [unclosed\n", "invalid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_unreadable_config_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch, text: str, fragment: str) -> None:
    path = clean_env / "broken.yaml"
    path.write_text(text)
    monkeypatch.setenv("PAGERPATCH_CONFIG_FILE", str(path))
    with pytest.raises(ConfigError, match=fragment) as info:
        load_settings()
    assert str(path) in str(info.value)


def test_missing_config_file_is_named(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = clean_env / "nope.yaml"
    monkeypatch.setenv("PAGERPATCH_CONFIG_FILE", str(path))
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_settings()
    assert str(path) in str(info.value)


def test_valid_yaml_values_are_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = clean_env / "pagerpatch.yaml"
    path.write_text("policy:\n  max_diff_lines: 50\nbus:\n  consumers:\n    fixgen: {ack_wait_s: 120}\n")
    monkeypatch.setenv("PAGERPATCH_CONFIG_FILE", str(path))
    s = load_settings()
    assert s.policy.max_diff_lines == 50
    assert s.bus.consumers["fixgen"].ack_wait_s == 120


@pytest.mark.parametrize(
    ("env", "nats", "db"),
    [
        ({}, None, None),
        ({"NATS_URL": "nats://n:4222"}, "nats://n:4222", None),
        ({"DATABASE_URL": "postgresql://u@h/db"}, None, "postgresql://u@h/db"),
        (
            {"NATS_URL": "nats://a:1", "DATABASE_URL": "postgresql://b/c"},
            "nats://a:1",
            "postgresql://b/c",
        ),
        ({"PAGERPATCH_NATS_URL": "nats://p:2"}, "nats://p:2", None),
    ],
)
def test_urls_from_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], nats: str | None, db: str | None
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert s.nats_url == nats
    assert s.database_url == db

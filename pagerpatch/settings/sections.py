"""The sections of the settings tree (bus, repos, triage, policy, sandbox, ingest, telemetry, llm)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    NoDecode,
)

from pagerpatch.settings.integrations import RepoGithub
from schemas.events import Severity


class ConfigError(Exception):
    """A configuration file or variable is invalid; the message names the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsumerOverride(_Strict):
    ack_wait_s: float | None = Field(default=None, gt=0)
    max_deliver: int | None = Field(default=None, ge=1)
    backoff_s: tuple[float, ...] | None = None


class BusSettings(_Strict):
    # Overrides of schemas/streams.py definitions by durable name ("*" applies to all).
    consumers: dict[str, ConsumerOverride] = Field(default_factory=dict)
    duplicate_window_s: float = Field(default=120.0, gt=0)
    replicas: int = Field(default=1, ge=1, le=5)
    # Delay before a failed message is offered again: base * 2^(deliveries-1), capped.
    retry_base_s: float = Field(default=1.0, ge=0)
    retry_cap_s: float = Field(default=60.0, ge=0)
    publish_timeout_s: float = Field(default=5.0, gt=0)
    fetch_batch: int = Field(default=16, ge=1, le=512)


class RepoConfig(_Strict):
    """A repository pagerpatch may diagnose and patch."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    path: str | None = None
    url: str | None = None
    default_branch: str = "main"
    test_command: str = "python -m pytest -q"
    services: list[str] = Field(default_factory=list)
    remote: str | None = None  # where pull requests go; default: a local bare remote under PAGERPATCH_HOME
    # Run once per dependency-file hash into the repository's own environment (`pip install -e .[test]`,
    # `uv sync`); without it the tests get only pytest (pagerpatch/sandbox/environment.py).
    setup_command: str | None = Field(default=None, min_length=1, max_length=2000)
    setup_network: bool = False  # network during the set-up only, and only when this is true
    test_timeout_s: float | None = Field(default=None, gt=0)  # this repository's test limit (else sandbox.timeout_s)
    github: RepoGithub | None = None  # pull requests go to GitHub (when configured) instead of `remote`

    def location(self) -> str:
        loc = self.path or self.url
        if not loc:
            raise ConfigError(f"repo {self.name!r}: give `path` or `url`")
        return loc


class ServiceEntry(_Strict):
    tier: int = Field(default=2, ge=0, le=3)
    team: str | None = None
    owners: list[str] = Field(default_factory=list)
    repo: str | None = None


class AlertMatch(_Strict):
    """Which alerts a triage rule applies to: every field given must match (an empty rule matches all alerts).

    `service`, `source`, `kind` and label values are shell-style globs (`checkout-*`); `title` is a regular
    expression searched case-insensitively in the alert's title.
    """

    service: str | None = None
    source: str | None = None
    kind: str | None = None
    title: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("title")
    @classmethod
    def _title_is_a_regex(cls, v: str | None) -> str | None:
        import re

        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {v!r}: {exc}") from exc
        return v


class WeeklyWindow(_Strict):
    """A recurring window: on these days, from `start` to `end` (HH:MM, `end` may be past midnight)."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"


class MaintenanceWindow(AlertMatch):
    """Alerts matching this during the window are noise: one-off (`starts_at`/`ends_at`) or `weekly`."""

    name: str = Field(min_length=1, max_length=100)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    weekly: WeeklyWindow | None = None

    @model_validator(mode="after")
    def _has_a_time(self) -> MaintenanceWindow:
        if self.weekly is None and (self.starts_at is None or self.ends_at is None):
            raise ValueError("a maintenance window needs `starts_at` and `ends_at`, or `weekly`")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("`ends_at` must be after `starts_at`")
        return self


class NoisePattern(AlertMatch):
    """A known-noise pattern: matching firing alerts never open an incident."""

    name: str = Field(min_length=1, max_length=100)


class OpenAfterRule(AlertMatch):
    """Open an incident only after `count` matching alerts of one group within `within_s` seconds."""

    name: str = Field(min_length=1, max_length=100)
    count: int = Field(default=3, ge=1)
    within_s: float = Field(default=300.0, gt=0)


class TriageSettings(_Strict):
    dedup_window_s: float = Field(default=6 * 3600.0, gt=0)
    default_severity: Severity = Severity.P2
    # Flapping: this many firing<->resolved changes of one alert within the window make it noise. The window is also
    # how soon after triage closed an incident a re-fire reopens it (docs/triage.md).
    flapping_window_s: float = Field(default=600.0, gt=0)
    flapping_min_changes: int = Field(default=4, ge=2)
    # Short spikes: firing alerts of these kinds wait until they have fired this long (0: off).
    spike_threshold_s: float = Field(default=0.0, ge=0)
    spike_kinds: list[str] = Field(default_factory=lambda: ["latency", "saturation"])
    # Blast radius: this many distinct resources (or alerts) firing in one group raise severity one level.
    blast_radius_threshold: int = Field(default=3, ge=2)
    blast_radius_window_s: float = Field(default=900.0, gt=0)
    # A resolution closes the incident when every alert of its group has resolved and no fix work started.
    close_on_resolve: bool = True
    # What an alert no rule decides becomes without a model hint: "open" (real) or "suppress" (noise).
    undecided: Literal["open", "suppress"] = "open"
    llm_hint: bool = True  # ask the configured model about undecided alerts (never about blocked ones)
    # Alert history (Postgres) kept per group: how far back and how many observations.
    history_window_s: float = Field(default=3600.0, gt=0)
    history_max_per_group: int = Field(default=200, ge=10, le=10_000)
    history_retention_s: float = Field(default=24 * 3600.0, gt=0)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    known_noise: list[NoisePattern] = Field(default_factory=list)
    open_after: list[OpenAfterRule] = Field(default_factory=list)
    # Labels that identify nothing (they change on a restart or per scrape replica): left out of an alert's identity.
    volatile_labels: list[str] = Field(
        default_factory=lambda: [
            "uid", "id", "name", "prometheus_replica", "container_id", "image_id", "pod_template_hash",
            "controller_revision_hash",
        ]
    )  # fmt: skip
    # Grafana's DatasourceNoData (a rule's query returned nothing): "noise" like CloudWatch INSUFFICIENT_DATA, or
    # "real" (the target may be dead) to judge it by the other rules.
    datasource_nodata: Literal["noise", "real"] = "noise"
    # Service globs whose CloudWatch alarms named after an EC2 instance stay one incident per instance; others make
    # one incident per alarm family (an auto-scaling group), each instance a member.
    cloudwatch_per_instance: list[str] = Field(default_factory=list)


class PolicySettings(_Strict):
    protected_paths: list[str] = Field(default_factory=list)
    max_diff_lines: int = Field(default=400, ge=1)
    max_files: int = Field(default=10, ge=1)
    approval_threshold: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] = "HIGH"
    # Slack user ids (U…) whose approve/reject buttons count; a click by anyone else is refused and audited.
    # Empty: Slack buttons decide nothing (approve with the CLI).
    slack_approvers: list[str] = Field(default_factory=list)


class SandboxSettings(_Strict):
    backend: Literal["bubblewrap", "unsandboxed"] = "bubblewrap"
    allow_unsandboxed: bool = False
    timeout_s: float = Field(default=300.0, gt=0)
    memory_mb: int = Field(default=2048, ge=64)
    # CPU seconds per process (RLIMIT_CPU; unset: twice the run's timeout) and processes+threads per run
    # (cgroup pids.max, else RLIMIT_NPROC); `cgroups: off` keeps to rlimits (README: sandbox limits).
    cpu_s: int | None = Field(default=None, ge=1)
    max_processes: int | None = Field(default=512, ge=16)
    cgroups: Literal["auto", "off"] = "auto"
    output_limit_bytes: int = Field(default=64_000, ge=1024)
    # Sandbox runs (tests, environments, scripts) at once per fixgen process; the rest wait (unset: CPU count).
    max_concurrent: int | None = Field(default=None, ge=1)


class DiagnosisSettings(_Strict):
    # Git work (refresh, worktrees, blame) at once per diagnosis process; the rest wait (unset: CPU count).
    max_concurrent: int | None = Field(default=None, ge=1)


class FixgenSettings(_Strict):
    # Fix agent (model-patch) attempts per incident, each a patch proved in the sandbox (docs/fixgen.md).
    max_attempts: int = Field(default=3, ge=1, le=10)


WebhookProvider = Literal[
    "sns", "pagerduty", "alertmanager", "grafana", "sentry", "github", "linear", "slack", "generic"
]  # fmt: skip
GenericAlertField = Literal[
    "title", "service", "severity", "description", "stack_trace", "labels", "commit", "version", "fingerprint",
    "status", "resource", "links", "occurred_at", "frame_vars",
]  # fmt: skip


def _comma_list(v: object) -> object:
    """`a,b` or a JSON list (environment variables) -> list; anything else is left to validation."""
    if isinstance(v, str) and v.lstrip().startswith("["):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v


class IngestSettings(_Strict):
    """The webhook edge (services/ingest, docs/ingest.md). Secrets are the top-level `*_secret`/`*_token` fields."""

    # Providers accepted WITHOUT a configured secret (local use only; a configured secret is always checked).
    open_providers: Annotated[list[WebhookProvider], NoDecode] = Field(default_factory=list)
    generic_signature_header: str = Field(default="X-Pagerpatch-Signature", min_length=1)
    # Generic alert field -> JSON pointer ("/alert/name") or dotted path ("alert.name") in the posted body.
    generic_mapping: dict[GenericAlertField, str] = Field(default_factory=dict)
    slack_max_skew_s: float = Field(default=300.0, gt=0)
    linear_max_skew_s: float = Field(default=60.0, gt=0)
    grafana_max_skew_s: float = Field(default=300.0, gt=0)
    grafana_signature_header: str = Field(default="X-Grafana-Alerting-Signature", min_length=1)
    grafana_timestamp_header: str = Field(default="X-Grafana-Alerting-Signature-Timestamp", min_length=1)
    # SNS is verified with AWS's certificate; topics outside this list are refused (empty: refused unless opened).
    sns_topic_arns: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sns_certificate_ttl_s: float = Field(default=3600.0, gt=0)
    bot_name: str = Field(default="pagerpatch", min_length=1, max_length=100)  # @mention that requests a task
    bot_label: str = Field(default="pagerpatch", min_length=1, max_length=100)  # issue label that requests a task
    service_labels: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["service", "app", "job"])
    delivery_retention_s: float = Field(default=7 * 86400.0, gt=0)  # providers retry for up to 48 h
    retry_after_s: int = Field(default=5, ge=1)

    @field_validator("open_providers", "sns_topic_arns", "service_labels", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return _comma_list(v)


class TelemetrySettings(_Strict):
    exporter: Literal["none", "console", "otlp", "file"] = "none"
    otlp_endpoint: str | None = None
    file_path: str | None = None


class ModelPrice(_Strict):
    """USD per million tokens (cache writes and reads are priced separately by the providers)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    cache_read: float = Field(ge=0)


def _default_prices() -> dict[str, ModelPrice]:
    # Check against the provider's current price list; "default" prices any model not listed (conservatively).
    return {
        "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cache_write=1.25, cache_read=0.10),
        "claude-sonnet-4-6": ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30),
        "claude-opus-4-6": ModelPrice(input=5.0, output=25.0, cache_write=6.25, cache_read=0.50),
        "default": ModelPrice(input=15.0, output=75.0, cache_write=18.75, cache_read=1.50),
    }


class LlmSettings(_Strict):
    """The agent runtime (pagerpatch/llm, docs/agent-runtime.md). The API key is `ANTHROPIC_API_KEY`."""

    enabled: bool | None = None  # None: on when an API key or base URL is configured (or provider is bedrock/vertex)
    provider: Literal["anthropic", "bedrock", "vertex"] = "anthropic"
    base_url: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    retry_base_s: float = Field(default=1.0, ge=0)
    retry_cap_s: float = Field(default=60.0, ge=0)
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    aws_region: str | None = None
    aws_profile: str | None = None
    vertex_region: str | None = None
    vertex_project_id: str | None = None
    config_dir: Path = Path("config")  # tools.yaml, agents.yaml, policies.yaml, prompts/
    model: str = "claude-sonnet-4-6"  # strong default (investigation); agents.yaml overrides per agent and step
    cheap_model: str = "claude-haiku-4-5"  # classification, repair, formatting
    max_tokens: int = Field(default=4096, ge=1)
    structured_retries: int = Field(default=2, ge=0, le=10)
    max_parallel_tools: int = Field(default=4, ge=1, le=64)
    tool_timeout_s: float = Field(default=30.0, gt=0)
    tool_output_limit_chars: int = Field(default=16_000, ge=256)
    max_steps: int = Field(default=8, ge=1, le=100)
    prices: dict[str, ModelPrice] = Field(default_factory=_default_prices)

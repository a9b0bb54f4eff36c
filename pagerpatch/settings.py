"""One typed settings tree, read once at start-up from the environment and an optional `pagerpatch.yaml`.

Nothing else in the code base reads `os.environ`.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

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
    # Flapping: this many firing<->resolved changes of one alert within the window make it noise.
    flapping_window_s: float = Field(default=600.0, gt=0)
    flapping_min_changes: int = Field(default=2, ge=2)
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
    output_limit_bytes: int = Field(default=64_000, ge=1024)


WebhookProvider = Literal[
    "sns", "pagerduty", "alertmanager", "grafana", "sentry", "github", "linear", "slack", "generic"
]  # fmt: skip
GenericAlertField = Literal[
    "title", "service", "severity", "description", "stack_trace", "labels", "commit", "version", "fingerprint",
    "status", "resource", "links", "occurred_at",
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAGERPATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        populate_by_name=True,
    )

    home: Path = Field(default=Path(".pagerpatch"))
    nats_url: str | None = Field(default=None, validation_alias=AliasChoices("NATS_URL", "PAGERPATCH_NATS_URL"))
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PAGERPATCH_DATABASE_URL")
    )
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8080, ge=0, le=65535)
    ingest_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    log_level: str = "INFO"
    failpoints: Annotated[list[str], NoDecode] = Field(default_factory=list)
    team: str | None = None
    # Webhook secrets (ingest): a comma-separated list allows rotation, any one matches. Never logged.
    github_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    slack_signing_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    pagerduty_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    linear_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    sentry_client_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    grafana_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    alertmanager_token: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    generic_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    ingest: IngestSettings = Field(default_factory=IngestSettings)

    bus: BusSettings = Field(default_factory=BusSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "PAGERPATCH_ANTHROPIC_API_KEY")
    )
    repos: list[RepoConfig] = Field(default_factory=list)
    service_catalog: dict[str, ServiceEntry] = Field(default_factory=dict)

    @field_validator("failpoints", mode="before")
    @classmethod
    def _split_failpoints(cls, v: object) -> object:
        return [p for p in v.split(",") if p] if isinstance(v, str) else v

    @field_validator(
        "github_webhook_secret",
        "slack_signing_secret",
        "pagerduty_webhook_secret",
        "linear_webhook_secret",
        "sentry_client_secret",
        "grafana_webhook_secret",
        "alertmanager_token",
        "generic_webhook_secret",
        mode="before",
    )
    @classmethod
    def _split_secrets(cls, v: object) -> object:
        return _comma_list(v)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()

    def repo(self, name: str) -> RepoConfig:
        for r in self.repos:
            if r.name == name:
                return r
        raise KeyError(name)


def config_path() -> Path | None:
    """The YAML file in force: PAGERPATCH_CONFIG_FILE, else ./pagerpatch.yaml, else $PAGERPATCH_HOME/pagerpatch.yaml."""
    explicit = os.environ.get("PAGERPATCH_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    here = Path("pagerpatch.yaml")
    if here.exists():
        return here
    home = Path(os.environ.get("PAGERPATCH_HOME", ".pagerpatch")) / "pagerpatch.yaml"
    return home if home.exists() else None


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the optional YAML file; lines of its keys are kept so errors can name them."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = config_path()
        self.data: dict[str, Any] = {}
        if self.path is None:
            return
        if not self.path.exists():
            raise ConfigError(f"{self.path}: config file not found")
        try:
            loaded = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}: invalid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{self.path}: the top level must be a mapping")
        self.data = loaded

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def _line_of(path: Path, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line of a key path in a YAML file (for error messages)."""
    try:
        node = yaml.compose(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    line: int | None = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(key):
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load_settings(**overrides: Any) -> Settings:
    """Read settings once; configuration errors name the file, line and field."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:
        raise ConfigError(f"invalid environment variable: {exc} (complex values are JSON)") from exc
    except ValidationError as exc:
        path = config_path()
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc)
            where = ""
            if path is not None:
                line = _line_of(path, loc)
                where = f"{path}:{line}: " if line else f"{path}: "
            lines.append(f"{where}{field}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

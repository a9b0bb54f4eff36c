"""One typed settings tree, read once at start-up from the environment and an optional `pagerpatch.yaml`.

Nothing else in the code base reads `os.environ`. The sections live in `sections.py`, the YAML file in `files.py`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from pagerpatch.settings.console import ConsoleSettings
from pagerpatch.settings.files import _YamlSource, config_path, line_of
from pagerpatch.settings.integrations import (
    FlatIntegrationEnv,
    GithubSettings,
    LinearSettings,
    RepoGithub,
    SlackSettings,
)
from pagerpatch.settings.knowledge import KnowledgeSettings, ObservabilitySettings
from pagerpatch.settings.metrics import MetricsSettings
from pagerpatch.settings.sections import (
    AlertMatch,
    BusSettings,
    ConfigError,
    ConsumerOverride,
    DiagnosisSettings,
    FixgenSettings,
    IngestSettings,
    LlmSettings,
    MaintenanceWindow,
    ModelPrice,
    NoisePattern,
    OpenAfterRule,
    PolicySettings,
    RepoConfig,
    SandboxSettings,
    ServiceEntry,
    TelemetrySettings,
    TriageSettings,
    WeeklyWindow,
    _comma_list,
)

__all__ = [
    "AlertMatch",
    "BusSettings",
    "ConfigError",
    "ConsumerOverride",
    "DiagnosisSettings",
    "FixgenSettings",
    "GithubSettings",
    "IngestSettings",
    "LinearSettings",
    "LlmSettings",
    "MaintenanceWindow",
    "ModelPrice",
    "NoisePattern",
    "OpenAfterRule",
    "PolicySettings",
    "RepoConfig",
    "RepoGithub",
    "SandboxSettings",
    "ServiceEntry",
    "Settings",
    "SlackSettings",
    "TelemetrySettings",
    "TriageSettings",
    "WeeklyWindow",
    "config_path",
    "get_settings",
    "line_of",
    "load_settings",
]


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
    prometheus_token: SecretStr | None = None  # PAGERPATCH_PROMETHEUS_TOKEN: `Authorization: Bearer` to Prometheus
    loki_token: SecretStr | None = None  # PAGERPATCH_LOKI_TOKEN: `Authorization: Bearer` to Loki
    ingest: IngestSettings = Field(default_factory=IngestSettings)

    bus: BusSettings = Field(default_factory=BusSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    diagnosis: DiagnosisSettings = Field(default_factory=DiagnosisSettings)
    fixgen: FixgenSettings = Field(default_factory=FixgenSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "PAGERPATCH_ANTHROPIC_API_KEY")
    )
    repos: list[RepoConfig] = Field(default_factory=list)
    service_catalog: dict[str, ServiceEntry] = Field(default_factory=dict)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)  # services/console (docs/console.md)
    # Where the team works (pagerpatch/settings/integrations.py): each on when its credentials are configured.
    github: GithubSettings = Field(default_factory=GithubSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    linear: LinearSettings = Field(default_factory=LinearSettings)

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
        return (init_settings, env_settings, FlatIntegrationEnv(settings_cls), _YamlSource(settings_cls))

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()

    def repo(self, name: str) -> RepoConfig:
        for r in self.repos:
            if r.name == name:
                return r
        raise KeyError(name)


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
                line = line_of(path, loc)
                where = f"{path}:{line}: " if line else f"{path}: "
            lines.append(f"{where}{field}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

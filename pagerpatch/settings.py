"""One typed settings tree, read once at start-up from the environment and an optional `pagerpatch.yaml`.

Nothing else in the code base reads `os.environ`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
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


class TriageSettings(_Strict):
    dedup_window_s: float = Field(default=6 * 3600.0, gt=0)
    default_severity: Severity = Severity.P2


class PolicySettings(_Strict):
    protected_paths: list[str] = Field(default_factory=list)
    max_diff_lines: int = Field(default=400, ge=1)
    max_files: int = Field(default=10, ge=1)
    approval_threshold: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] = "HIGH"


class SandboxSettings(_Strict):
    backend: Literal["bubblewrap", "unsandboxed"] = "bubblewrap"
    allow_unsandboxed: bool = False
    timeout_s: float = Field(default=300.0, gt=0)
    memory_mb: int = Field(default=2048, ge=64)
    output_limit_bytes: int = Field(default=64_000, ge=1024)


class TelemetrySettings(_Strict):
    exporter: Literal["none", "console", "otlp", "file"] = "none"
    otlp_endpoint: str | None = None
    file_path: str | None = None


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

    bus: BusSettings = Field(default_factory=BusSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    repos: list[RepoConfig] = Field(default_factory=list)
    service_catalog: dict[str, ServiceEntry] = Field(default_factory=dict)

    @field_validator("failpoints", mode="before")
    @classmethod
    def _split_failpoints(cls, v: object) -> object:
        return [p for p in v.split(",") if p] if isinstance(v, str) else v

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

"""Settings sections of the knowledge base (`knowledge:`) and the observability tools (`observability:`).

The tokens of the observability APIs are top-level secrets (`PAGERPATCH_PROMETHEUS_TOKEN`,
`PAGERPATCH_LOKI_TOKEN`), next to the other secrets of the Settings class.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from pagerpatch.settings.sections import _Strict

DEFAULT_KNOWLEDGE_DIR = "knowledge"


class KnowledgeSettings(_Strict):
    """Where the Markdown knowledge base lives (docs/knowledge.md)."""

    # Default: `knowledge/` beside the config file when there is one, else `./knowledge`.
    dir: Path | None = None
    sync_on_start: bool = True  # the diagnosis service re-indexes changed files when it starts

    def resolved_dir(self, config_file: Path | None) -> Path:
        """`dir` when set, else `knowledge/` beside `config_file`, else `./knowledge`."""
        if self.dir is not None:
            return self.dir
        if config_file is not None:
            return config_file.parent / DEFAULT_KNOWLEDGE_DIR
        return Path(DEFAULT_KNOWLEDGE_DIR)


class ObservabilitySettings(_Strict):
    """The observability APIs the investigation agent may query; a tool is only offered when its URL is set."""

    prometheus_url: str | None = None  # base URL, e.g. http://prometheus:9090 (…/api/v1/query_range is appended)
    loki_url: str | None = None  # base URL, e.g. http://loki:3100 (…/loki/api/v1/query_range is appended)
    loki_tenant: str | None = None  # sent as X-Scope-OrgID to a multi-tenant Loki
    timeout_s: float = Field(default=15.0, gt=0, le=300)
    max_series: int = Field(default=20, ge=1, le=500)  # series shown per Prometheus answer
    max_lines: int = Field(default=1000, ge=1, le=5000)  # log lines a Loki query may ask for

    @field_validator("prometheus_url", "loki_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

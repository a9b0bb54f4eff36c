"""`metrics`: where a service process serves Prometheus' `/metrics` (ingest also serves it on its own HTTP port)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MetricsSettings(BaseModel):
    """`PAGERPATCH_METRICS__PORT=9090` turns the endpoint on (0: a free port); unset, a service serves none.

    Every process of `pagerpatch up` shares one environment, so one port cannot serve them all: `ports` gives each
    service its own (`PAGERPATCH_METRICS__PORTS='{"triage": 9101, "diagnosis": 9102}'`) and wins over `port`.
    In Kubernetes each pod has its own address, so the one `port` is enough (the Helm chart sets it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)
    ports: dict[str, int] = Field(default_factory=dict)
    # Consumer lag is read from JetStream when Prometheus scrapes; a slow or unreachable server answers from the
    # last reading after this long, and readings younger than `lag_cache_s` are reused (several scrapers).
    lag_timeout_s: float = Field(default=2.0, gt=0)
    lag_cache_s: float = Field(default=5.0, ge=0)

    def port_for(self, service: str) -> int | None:
        """The port `service` serves /metrics on (0: any free port), or None: no endpoint."""
        return self.ports.get(service, self.port)

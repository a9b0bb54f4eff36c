"""Ingest's view of the settings tree: where it listens, how much it accepts, and each provider's secrets."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from pagerpatch.settings import IngestSettings, Settings


def _bytes(secrets: list[SecretStr]) -> tuple[bytes, ...]:
    return tuple(s.get_secret_value().encode() for s in secrets if s.get_secret_value())


@dataclass(frozen=True)
class IngestConfig:
    host: str
    port: int
    max_body_bytes: int
    edge: IngestSettings = field(default_factory=IngestSettings)
    team: str | None = None
    publish_timeout_s: float = 5.0
    # provider name -> its secrets (several during a rotation); never logged (repr hides them)
    secrets: dict[str, tuple[bytes, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, s: Settings) -> IngestConfig:
        return cls(
            host=s.ingest_host,
            port=s.ingest_port,
            max_body_bytes=s.ingest_max_body_bytes,
            edge=s.ingest,
            team=s.team,
            publish_timeout_s=s.bus.publish_timeout_s,
            secrets={
                "github": _bytes(s.github_webhook_secret),
                "slack": _bytes(s.slack_signing_secret),
                "pagerduty": _bytes(s.pagerduty_webhook_secret),
                "linear": _bytes(s.linear_webhook_secret),
                "sentry": _bytes(s.sentry_client_secret),
                "grafana": _bytes(s.grafana_webhook_secret),
                "alertmanager": _bytes(s.alertmanager_token),
                "generic": _bytes(s.generic_webhook_secret),
                "sns": (),  # verified with AWS's certificate, restricted by ingest.sns_topic_arns
            },
        )

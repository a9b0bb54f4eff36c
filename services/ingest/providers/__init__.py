"""The providers ingest accepts, by the name in `POST /webhooks/<name>`."""

from __future__ import annotations

from services.ingest.providers import alertmanager, generic, github, grafana, linear, pagerduty, sentry, slack, sns
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest

PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        sns.PROVIDER,
        pagerduty.PROVIDER,
        alertmanager.PROVIDER,
        grafana.PROVIDER,
        sentry.PROVIDER,
        github.PROVIDER,
        linear.PROVIDER,
        slack.PROVIDER,
        generic.PROVIDER,
    )
}

__all__ = ["PROVIDERS", "Context", "Delivery", "Provider", "Rejection", "WebhookRequest"]

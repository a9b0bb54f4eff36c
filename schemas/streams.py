"""Stream and durable consumer definitions. `pagerpatch bus setup` creates or updates exactly these."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import subjects

EVENTS_STREAM = "PAGERPATCH"
ADVISORY_STREAM = "PAGERPATCH_ADVISORIES"


class StreamDef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    subjects: tuple[str, ...]
    duplicate_window_s: float = 120.0
    max_age_s: float = 14 * 24 * 3600.0
    description: str = ""


class ConsumerDef(BaseModel):
    """One durable pull consumer: one service reading one kind of event (queue semantics across replicas)."""

    model_config = ConfigDict(frozen=True)

    durable: str
    service: str
    subject: str
    stream: str = EVENTS_STREAM
    ack_wait_s: float = Field(default=30.0, gt=0)
    max_deliver: int = Field(default=5, ge=1)
    backoff_s: tuple[float, ...] = ()
    max_ack_pending: int = 256

    @model_validator(mode="after")
    def _backoff_fits(self) -> ConsumerDef:
        if self.backoff_s and len(self.backoff_s) >= self.max_deliver:
            raise ValueError("backoff must have fewer entries than max_deliver")
        return self


EVENTS = StreamDef(
    name=EVENTS_STREAM,
    subjects=(subjects.ALL_EVENTS,),
    description="Every pagerpatch pipeline event; the log of the system.",
)

ADVISORIES = StreamDef(
    name=ADVISORY_STREAM,
    subjects=(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{EVENTS_STREAM}.>",),
    max_age_s=14 * 24 * 3600.0,
    description="Max-deliveries advisories, kept so dead letters are recorded even if no recorder was up.",
)

STREAMS: tuple[StreamDef, ...] = (EVENTS, ADVISORIES)

# The advisory stream's recorder, one per service, filtered on that service's consumers.
ADVISORY_DURABLE_SUFFIX = "-deadletters"

CONSUMERS: tuple[ConsumerDef, ...] = (
    ConsumerDef(durable="triage", service="triage", subject=subjects.ALERT_RECEIVED),
    ConsumerDef(durable="diagnosis", service="diagnosis", subject=subjects.INCIDENT_OPENED, ack_wait_s=60.0),
    # fixgen runs the repository's tests; the handler reports progress so ack_wait bounds a stuck worker only.
    ConsumerDef(durable="fixgen", service="fixgen", subject=subjects.DIAGNOSIS_READY, ack_wait_s=60.0),
    ConsumerDef(durable="review", service="review", subject=subjects.FIX_VALIDATED),
    ConsumerDef(durable="review-decisions", service="review", subject=subjects.APPROVAL_DECIDED),
    ConsumerDef(durable="notifier-approved", service="notifier", subject=subjects.FIX_APPROVED),
    ConsumerDef(durable="notifier-approval", service="notifier", subject=subjects.APPROVAL_REQUESTED),
    ConsumerDef(durable="notifier-rejected", service="notifier", subject=subjects.FIX_REJECTED),
    ConsumerDef(durable="notifier-failed", service="notifier", subject=subjects.FIX_FAILED),
    # A pull request merged (incident resolved) or closed unmerged (pr_closed), from the GitHub webhook.
    ConsumerDef(durable="notifier-pr-events", service="notifier", subject=subjects.PR_EVENT),
    # The incident's Slack thread (services/notifier/thread.py): every stage's end updates the root message.
    ConsumerDef(durable="notifier-opened", service="notifier", subject=subjects.INCIDENT_OPENED),
    ConsumerDef(durable="notifier-diagnosis", service="notifier", subject=subjects.DIAGNOSIS_READY),
    ConsumerDef(durable="notifier-validated", service="notifier", subject=subjects.FIX_VALIDATED),
    ConsumerDef(durable="notifier-decided", service="notifier", subject=subjects.APPROVAL_DECIDED),
    ConsumerDef(durable="notifier-pr-opened", service="notifier", subject=subjects.PR_OPENED),
)


def consumers_of(service: str) -> tuple[ConsumerDef, ...]:
    return tuple(c for c in CONSUMERS if c.service == service)


def consumer(durable: str) -> ConsumerDef:
    for c in CONSUMERS:
        if c.durable == durable:
            return c
    raise KeyError(durable)

"""NATS subjects of every pipeline event: `pagerpatch.<entity>.<event>`. No subject is written inline elsewhere."""

from typing import Final

PREFIX: Final = "pagerpatch"

ALERT_RECEIVED: Final = "pagerpatch.alert.received"
ALERT_SUPPRESSED: Final = "pagerpatch.alert.suppressed"
INCIDENT_OPENED: Final = "pagerpatch.incident.opened"
DIAGNOSIS_READY: Final = "pagerpatch.diagnosis.ready"
FIX_VALIDATED: Final = "pagerpatch.fix.validated"
FIX_FAILED: Final = "pagerpatch.fix.failed"
FIX_APPROVED: Final = "pagerpatch.fix.approved"
FIX_REJECTED: Final = "pagerpatch.fix.rejected"
APPROVAL_REQUESTED: Final = "pagerpatch.approval.requested"
APPROVAL_DECIDED: Final = "pagerpatch.approval.decided"
PR_OPENED: Final = "pagerpatch.pr.opened"
PR_EVENT: Final = "pagerpatch.pr.event"
TASK_REQUESTED: Final = "pagerpatch.task.requested"
NOTIFICATION_SENT: Final = "pagerpatch.notification.sent"

# Dead letters are recorded in Postgres and also logged on this subject (one token per consumer).
DEADLETTER_PREFIX: Final = "pagerpatch.deadletter"
ALL_EVENTS: Final = "pagerpatch.>"


def for_type(event_type: str) -> str:
    """Subject of an event type (`alert.received` -> `pagerpatch.alert.received`)."""
    return f"{PREFIX}.{event_type}"


def deadletter(consumer: str) -> str:
    return f"{DEADLETTER_PREFIX}.{consumer}"


def max_deliveries_advisory(stream: str, consumer: str) -> str:
    """Server advisory published when a message exhausted `max_deliver` on a consumer."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"

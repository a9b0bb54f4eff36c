"""Payload models and event types for the whole pipeline (see DESIGN.md, "The pipeline")."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from schemas.envelope import Event, Payload
from schemas.fixes import FixAttempt
from schemas.investigation import InvestigationReport
from schemas.review import ReviewFinding

ShortText = Annotated[str, Field(max_length=500)]
LongText = Annotated[str, Field(max_length=20_000)]
Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{7,64}$")]


class Severity(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class RiskLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


# ---------------------------------------------------------------- alert.received
class FrameVars(Payload):
    """The local variables one stack frame captured when the error happened (Sentry sends them per frame), as
    plain JSON values: what lets a fix be proved by calling the failing function again."""

    file: Annotated[str, Field(max_length=1000)]
    function: Annotated[str, Field(max_length=500)]
    line: int | None = Field(default=None, ge=1)
    vars: dict[Annotated[str, Field(max_length=200)], Any] = Field(default_factory=dict, max_length=50)


class AlertReceivedPayload(Payload):
    """One normalized alert, whatever provider sent it."""

    source: Annotated[str, Field(min_length=1, max_length=100)]
    status: Literal["firing", "resolved"] = "firing"
    service: Annotated[str, Field(min_length=1, max_length=200)]
    resource: ShortText | None = None
    title: Annotated[str, Field(min_length=1, max_length=500)]
    description: LongText = ""
    severity_hint: Annotated[str, Field(max_length=50)] | None = None
    labels: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict
    )
    stack_trace: LongText | None = None
    links: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list, max_length=20)
    commit: Annotated[str, Field(max_length=100)] | None = None
    version: Annotated[str, Field(max_length=100)] | None = None
    fingerprint: Annotated[str, Field(max_length=200)] | None = None
    # The stable parts that identify "the same alert" at this source (alert name, alarm name, rule uid, issue id…),
    # chosen by the provider's normalizer; triage fingerprints from these (plus service and top frames).
    fingerprint_inputs: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict
    )
    # What kind of alert this is ("error", "latency", "availability", "saturation", "ci_failure", "metric", …).
    kind: Annotated[str, Field(max_length=50)] | None = None
    # The source itself says this is probably not actionable (e.g. "insufficient_data" from CloudWatch).
    noise_hint: Annotated[str, Field(max_length=100)] | None = None
    occurred_at: AwareDatetime | None = None
    delivery_id: Annotated[str, Field(max_length=300)] | None = None
    raw: Annotated[str, Field(max_length=16_384)] | None = None
    # Captured local variables per frame, innermost last (as in the stack trace), when the source sends them.
    frame_vars: list[FrameVars] = Field(default_factory=list, max_length=50)


class AlertReceived(Event[AlertReceivedPayload]):
    TYPE = "alert.received"
    type: Literal["alert.received"] = "alert.received"


# ---------------------------------------------------------------- alert.suppressed
class AlertSuppressedPayload(Payload):
    fingerprint: Annotated[str, Field(max_length=200)]
    reason: Literal["duplicate", "noise"]
    incident_id: uuid.UUID | None = None
    occurrences: int = Field(ge=1, default=1)
    reasons: list[ShortText] = Field(default_factory=list)


class AlertSuppressed(Event[AlertSuppressedPayload]):
    TYPE = "alert.suppressed"
    type: Literal["alert.suppressed"] = "alert.suppressed"


# ---------------------------------------------------------------- incident.opened
class IncidentOpenedPayload(Payload):
    fingerprint: Annotated[str, Field(max_length=200)]
    title: Annotated[str, Field(max_length=500)]
    service: Annotated[str, Field(max_length=200)]
    severity: Severity
    repo: Annotated[str, Field(max_length=200)] | None = None
    description: LongText = ""
    stack_trace: LongText | None = None
    commit: Annotated[str, Field(max_length=100)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    reasons: list[ShortText] = Field(default_factory=list)
    frame_vars: list[FrameVars] = Field(default_factory=list, max_length=50)


class IncidentOpened(Event[IncidentOpenedPayload]):
    TYPE = "incident.opened"
    type: Literal["incident.opened"] = "incident.opened"


# ---------------------------------------------------------------- diagnosis.ready
class Evidence(Payload):
    """A verified fact: a location in the repository and, when known, the commit that last changed it."""

    file: Annotated[str, Field(max_length=1000)]
    line: int = Field(ge=1)
    function: Annotated[str, Field(max_length=500)] | None = None
    commit: Sha | None = None
    note: ShortText = ""


class SuspectCommit(Payload):
    sha: Sha
    subject: ShortText
    author: ShortText = ""
    authored_at: AwareDatetime | None = None


class DiagnosisReadyPayload(Payload):
    repo: Annotated[str, Field(max_length=200)]
    base_commit: Sha
    root_cause: LongText
    suspect_commit: SuspectCommit | None = None
    evidence: list[Evidence] = Field(default_factory=list, max_length=50)
    confidence: float = Field(ge=0.0, le=1.0)
    strategy: Annotated[str, Field(max_length=100)] = "stacktrace-blame"
    title: ShortText = ""
    severity: Severity = Severity.P2
    # The next suspects, best first, tried in turn when reverting the suspect conflicts or changes nothing.
    candidates: list[SuspectCommit] = Field(default_factory=list, max_length=10)
    # What was considered and why it was set aside ("abc1234: only docstrings changed in the region", ...).
    tried: list[ShortText] = Field(default_factory=list, max_length=30)
    # The alert's exception type ("KeyError", "ValueError", ...) and the innermost repository frame's captured
    # arguments, when the alert carried them: enough to reproduce the failure without a model.
    exception_type: Annotated[str, Field(max_length=300)] | None = None
    reproduction: FrameVars | None = None
    # The investigation agent's grounded report (strategy `llm-investigation`); None for `stacktrace-blame`.
    report: InvestigationReport | None = None
    # Why the model's investigation did not stand (no model, unavailable, over budget, ungrounded...), if it did not.
    fallback_reason: ShortText | None = None


class DiagnosisReady(Event[DiagnosisReadyPayload]):
    TYPE = "diagnosis.ready"
    type: Literal["diagnosis.ready"] = "diagnosis.ready"


# ---------------------------------------------------------------- fix.validated / fix.failed
class TestRun(Payload):
    """What the repository's own test command said in the sandbox."""

    __test__ = False  # not a pytest class

    command: Annotated[str, Field(max_length=1000)]
    passed: bool
    exit_code: int | None
    summary: ShortText = ""
    duration_s: float = Field(ge=0.0)
    output_tail: Annotated[str, Field(max_length=8000)] = ""
    sandbox: Annotated[str, Field(max_length=50)] = "bubblewrap"
    # The first failing tests by id, when the runner reports tests one by one (pytest does).
    failed_tests: list[ShortText] = Field(default_factory=list, max_length=50)


Proof = Literal["proved", "unproven"]


class FixValidatedPayload(Payload):
    repo: Annotated[str, Field(max_length=200)]
    base_commit: Sha
    strategy: Annotated[str, Field(max_length=100)]
    patch: Annotated[str, Field(max_length=1_000_000)]
    commit_message: LongText
    files_changed: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list)
    lines_added: int = Field(ge=0, default=0)
    lines_removed: int = Field(ge=0, default=0)
    tests: TestRun
    attempts: int = Field(ge=1)
    diagnosis: DiagnosisReadyPayload
    # "proved": a check that fails at the base commit passes with the fix (a test, or the reproduction);
    # "unproven": the suite passes both ways, so nothing shows the fix fixes anything. Never auto-approved.
    proof: Proof = "unproven"
    proof_detail: LongText = ""
    base_tests: TestRun | None = None  # the same command at the base commit: the baseline
    fixed_tests: list[ShortText] = Field(default_factory=list, max_length=50)  # failing at the base, passing now
    removed_tests: list[ShortText] = Field(default_factory=list, max_length=50)  # tests the revert takes away
    regression_test: LongText | None = None  # the reproduction, added to the patch as a test
    reverted: SuspectCommit | None = None  # the commit actually reverted (a later candidate when the first failed)
    # Reproduce first (docs/fixgen.md): True when a regression test (or the captured call) fails at the base with
    # the alert's failure and passes with the fix; False when one was attempted and did not reproduce it (a test
    # that already passes at the base, another error, none written): review raises the risk; None: not attempted.
    reproduced: bool | None = None
    reproduction_note: LongText = ""
    attempt_log: list[FixAttempt] = Field(default_factory=list, max_length=50)  # every strategy's attempt, in order


class FixValidated(Event[FixValidatedPayload]):
    TYPE = "fix.validated"
    type: Literal["fix.validated"] = "fix.validated"


class FixFailedPayload(Payload):
    repo: Annotated[str, Field(max_length=200)]
    reason: LongText
    attempts: int = Field(ge=0)
    tests: TestRun | None = None
    tried: list[ShortText] = Field(default_factory=list, max_length=30)  # each candidate or attempt and its reason
    attempt_log: list[FixAttempt] = Field(default_factory=list, max_length=50)  # every strategy's attempt, in order


class FixFailed(Event[FixFailedPayload]):
    TYPE = "fix.failed"
    type: Literal["fix.failed"] = "fix.failed"


# ---------------------------------------------------------------- review
class RiskAssessment(Payload):
    level: RiskLevel
    score: int = Field(ge=0)
    reasons: list[ShortText] = Field(default_factory=list)
    # The model's self-critique (docs/review.md): it may raise `level` above the rules' level, never lower it.
    rules_level: RiskLevel | None = None  # what the deterministic rules alone gave (the floor)
    findings: list[ReviewFinding] = Field(default_factory=list, max_length=20)
    would_merge: bool | None = None  # the review agent's verdict; None: no model review


class FixApprovedPayload(Payload):
    risk: RiskAssessment
    approved_by: Annotated[str, Field(max_length=200)]
    reason: ShortText = ""
    fix: FixValidatedPayload


class FixApproved(Event[FixApprovedPayload]):
    TYPE = "fix.approved"
    type: Literal["fix.approved"] = "fix.approved"


class FixRejectedPayload(Payload):
    risk: RiskAssessment | None = None
    rejected_by: Annotated[str, Field(max_length=200)]
    reason: ShortText = ""


class FixRejected(Event[FixRejectedPayload]):
    TYPE = "fix.rejected"
    type: Literal["fix.rejected"] = "fix.rejected"


class ApprovalRequestedPayload(Payload):
    risk: RiskAssessment
    repo: Annotated[str, Field(max_length=200)]
    summary: LongText
    files_changed: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list)


class ApprovalRequested(Event[ApprovalRequestedPayload]):
    TYPE = "approval.requested"
    type: Literal["approval.requested"] = "approval.requested"


class ApprovalDecidedPayload(Payload):
    decision: Literal["approve", "reject"]
    decided_by: Annotated[str, Field(min_length=1, max_length=200)]
    reason: ShortText = ""
    channel: Literal["cli", "api", "slack"] = "cli"
    # The decider's account id on the channel (a Slack user id): what `policy.slack_approvers` is checked against.
    decided_by_id: Annotated[str, Field(max_length=200)] | None = None


class ApprovalDecided(Event[ApprovalDecidedPayload]):
    TYPE = "approval.decided"
    type: Literal["approval.decided"] = "approval.decided"


# ---------------------------------------------------------------- pull requests
class PrOpenedPayload(Payload):
    repo: Annotated[str, Field(max_length=200)]
    provider: Annotated[str, Field(max_length=50)]
    branch: Annotated[str, Field(max_length=300)]
    head_commit: Sha
    title: ShortText
    url: Annotated[str, Field(max_length=2000)]
    number: int | None = None


class PrOpened(Event[PrOpenedPayload]):
    TYPE = "pr.opened"
    type: Literal["pr.opened"] = "pr.opened"


class PrEventPayload(Payload):
    provider: Annotated[str, Field(max_length=50)]
    action: Literal["opened", "closed", "merged", "reopened", "commented"]
    repo: Annotated[str, Field(max_length=300)]
    number: int | None = None
    url: Annotated[str, Field(max_length=2000)] = ""
    branch: Annotated[str, Field(max_length=300)] = ""
    actor: ShortText = ""


class PrEvent(Event[PrEventPayload]):
    TYPE = "pr.event"
    type: Literal["pr.event"] = "pr.event"


# ---------------------------------------------------------------- requests and notifications
class TaskRequestedPayload(Payload):
    origin: Literal["github", "linear", "slack", "cron", "cli", "api"]
    title: Annotated[str, Field(min_length=1, max_length=500)]
    body: LongText = ""
    repo: Annotated[str, Field(max_length=300)] | None = None
    requested_by: ShortText = ""
    url: Annotated[str, Field(max_length=2000)] = ""
    delivery_id: Annotated[str, Field(max_length=300)] | None = None


class TaskRequested(Event[TaskRequestedPayload]):
    TYPE = "task.requested"
    type: Literal["task.requested"] = "task.requested"


class NotificationSentPayload(Payload):
    channel: Literal["log", "slack", "linear", "github", "email"]
    kind: Annotated[str, Field(max_length=100)]
    target: ShortText = ""
    text: LongText = ""
    about_event_id: uuid.UUID


class NotificationSent(Event[NotificationSentPayload]):
    TYPE = "notification.sent"
    type: Literal["notification.sent"] = "notification.sent"


EVENT_TYPES: tuple[type[Event[Any]], ...] = (
    AlertReceived,
    AlertSuppressed,
    IncidentOpened,
    DiagnosisReady,
    FixValidated,
    FixFailed,
    FixApproved,
    FixRejected,
    ApprovalRequested,
    ApprovalDecided,
    PrOpened,
    PrEvent,
    TaskRequested,
    NotificationSent,
)

EVENT_BY_TYPE: dict[str, type[Event[Any]]] = {cls.TYPE: cls for cls in EVENT_TYPES}

AnyEvent = Annotated[
    AlertReceived
    | AlertSuppressed
    | IncidentOpened
    | DiagnosisReady
    | FixValidated
    | FixFailed
    | FixApproved
    | FixRejected
    | ApprovalRequested
    | ApprovalDecided
    | PrOpened
    | PrEvent
    | TaskRequested
    | NotificationSent,
    Field(discriminator="type"),
]

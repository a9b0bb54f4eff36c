"""The triage eval: replay labelled alert sequences through the real triage engine and score the decisions.

Dataset format (JSON Lines, one case per line; blank lines and lines starting with `#` are skipped):

    {"id": "flap-1", "description": "...", "tags": ["flapping"],
     "config": {"triage": {...TriageSettings keys...}, "service_catalog": {"checkout": {"tier": 0}},
                "repos": {"checkout": "shop"}},
     "start": "2024-06-03T12:00:00Z",
     "alerts": [{"t": 0, "alert": {...alert.received payload...}, "expect": {"class": "real", "severity": "P1"}},
                {"t": 60, "repeat": 20, "every": 5, "alert": {...}, "expect": {"class": "duplicate"}}]}

`t` is seconds after `start`: when the alert arrives, triage's "now"; the alert's own time is its `occurred_at`
(default: the same), so a provider's repeat that keeps its start time can be replayed as sent. `repeat`/`every`
expand one entry into several alerts (`{i}` in any string of the alert becomes the copy's number); `expect` is
optional per alert (`class` real|noise|duplicate, optional `severity` P0–P3), so a case may label every alert or only
the final one. Each alert gets a deterministic event id, and the model hint is off (deterministic mode).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pagerpatch.settings import ServiceEntry, TriageSettings
from schemas.events import AlertReceived, AlertReceivedPayload, Severity
from services.triage import usecase
from services.triage.memory import MemoryTriageStore
from services.triage.ports import NoHint, SoftHint, TriageStore
from services.triage.settings import TriageConfig

CLASSES = ("real", "noise", "duplicate")
DEFAULT_START = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
CASE_NAMESPACE = uuid.UUID("0b7f3c1e-5a43-4d0e-9c55-3f1e2d6a8b90")
MAX_REPEAT = 20_000


class DatasetError(Exception):
    """The dataset is malformed; the message names the file and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Strict):
    class_: Literal["real", "noise", "duplicate"] = Field(alias="class")
    severity: Severity | None = None


class Step(_Strict):
    t: float = Field(default=0.0, ge=0)
    alert: dict[str, Any]
    expect: Expect | None = None
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    every: float = Field(default=0.0, ge=0)


class CaseConfig(_Strict):
    triage: dict[str, Any] = Field(default_factory=dict)
    service_catalog: dict[str, ServiceEntry] = Field(default_factory=dict)
    repos: dict[str, str] = Field(default_factory=dict)


class Case(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    config: CaseConfig = Field(default_factory=CaseConfig)
    start: AwareDatetime = DEFAULT_START
    alerts: list[Step] = Field(min_length=1)


@dataclass(frozen=True)
class CaseAlert:
    index: int
    at: datetime  # when the alert arrives: triage's "now" (its own time may be earlier, e.g. a repeat's start)
    event: AlertReceived
    expect: Expect | None


@dataclass(frozen=True)
class LoadedCase:
    case: Case
    line: int
    config: TriageConfig
    alerts: list[CaseAlert]


def _expand(case: Case) -> list[CaseAlert]:
    out: list[CaseAlert] = []
    for step in case.alerts:
        for copy in range(step.repeat):
            fields = _numbered(step.alert, copy) if step.repeat > 1 else dict(step.alert)
            at = case.start + timedelta(seconds=step.t + copy * step.every)
            fields.setdefault("occurred_at", at.isoformat())
            payload = AlertReceivedPayload.model_validate(fields)
            index = len(out)
            event = AlertReceived.create(
                payload, source="eval", event_id=uuid.uuid5(CASE_NAMESPACE, f"{case.id}:{index}"), occurred_at=at,
            )  # fmt: skip
            out.append(CaseAlert(index, at, event, step.expect))
    return out


def _numbered(value: Any, copy: int) -> Any:
    """`value` with `{i}` in every string replaced by the copy's number."""
    if isinstance(value, str):
        return value.replace("{i}", str(copy))
    if isinstance(value, dict):
        return {k: _numbered(v, copy) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbered(v, copy) for v in value]
    return value


def _where(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]]
    return "; ".join(parts)


def load_dataset(path: Path | Traversable) -> list[LoadedCase]:
    """Parse and validate a dataset file; a problem raises DatasetError naming the line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    cases: list[LoadedCase] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}:{n}: invalid JSON: {exc}") from None
        try:
            case = Case.model_validate(raw)
        except ValidationError as exc:
            raise DatasetError(f"{path}:{n}: {_where(exc)}") from None
        if case.id in seen:
            raise DatasetError(f"{path}:{n}: duplicate case id {case.id!r} (first on line {seen[case.id]})")
        seen[case.id] = n
        try:
            rules = TriageSettings.model_validate(case.config.triage)
            alerts = _expand(case)
        except ValidationError as exc:
            raise DatasetError(f"{path}:{n}: case {case.id!r}: {_where(exc)}") from None
        if not any(a.expect for a in alerts):
            raise DatasetError(f"{path}:{n}: case {case.id!r} has no `expect` on any alert")
        cases.append(LoadedCase(case, n, TriageConfig(rules=rules, catalog=dict(case.config.service_catalog)), alerts))
    if not cases:
        raise DatasetError(f"{path}: no cases")
    return cases


# ---------------------------------------------------------------- running and scoring


@dataclass(frozen=True)
class Outcome:
    case_id: str
    index: int
    line: int
    expected: Expect
    got_class: str
    got_severity: Severity
    reasons: tuple[str, ...]

    @property
    def class_ok(self) -> bool:
        return self.expected.class_ == self.got_class

    @property
    def severity_ok(self) -> bool | None:
        return None if self.expected.severity is None else self.expected.severity == self.got_severity


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    cases: int = 0
    alerts: int = 0

    @property
    def class_accuracy(self) -> float:
        return sum(o.class_ok for o in self.outcomes) / max(1, len(self.outcomes))

    @property
    def severity_scored(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.severity_ok is not None]

    @property
    def severity_accuracy(self) -> float:
        scored = self.severity_scored
        return sum(bool(o.severity_ok) for o in scored) / max(1, len(scored))

    @property
    def case_accuracy(self) -> float:
        """Share of cases whose every labelled decision (class and severity) is right."""
        wrong = {o.case_id for o in self.wrong()}
        return (self.cases - len(wrong)) / max(1, self.cases)

    def confusion(self) -> dict[tuple[str, str], int]:
        return dict(Counter((o.expected.class_, o.got_class) for o in self.outcomes))

    def wrong(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.class_ok or o.severity_ok is False]

    def by_tag(self, cases: Iterable[LoadedCase]) -> dict[str, tuple[int, int]]:
        tags = {c.case.id: c.case.tags for c in cases}
        out: dict[str, list[int]] = {}
        for o in self.outcomes:
            for tag in tags.get(o.case_id, []):
                counts = out.setdefault(tag, [0, 0])
                counts[0] += o.class_ok
                counts[1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}


StoreFactory = Callable[[LoadedCase], AbstractAsyncContextManager[TriageStore]]


@asynccontextmanager
async def memory_store(case: LoadedCase) -> AsyncIterator[TriageStore]:
    yield MemoryTriageStore(repos=dict(case.case.config.repos))


async def run_case(case: LoadedCase, store: TriageStore, hint: SoftHint | None = None) -> list[Outcome]:
    outcomes = []
    for a in case.alerts:
        result = await usecase.triage(a.event, store, case.config, hint or NoHint(), a.at)
        if a.expect is not None:
            d = result.decision
            outcomes.append(Outcome(case.case.id, a.index, case.line, a.expect, d.classification, d.severity,
                                    d.reasons))  # fmt: skip
    return outcomes


async def run(cases: list[LoadedCase], stores: StoreFactory = memory_store) -> Report:
    """Replay every case on a fresh store and score each labelled alert."""
    report = Report()
    for case in cases:
        async with stores(case) as store:
            report.outcomes.extend(await run_case(case, store))
        report.cases += 1
        report.alerts += len(case.alerts)
    return report


def render(report: Report, cases: list[LoadedCase], show_wrong: int = 50) -> list[Any]:
    """Rich renderables: summary, confusion matrix, per-tag accuracy, the cases it got wrong."""
    from rich.table import Table

    out: list[Any] = []
    sev = report.severity_scored
    out.append(
        f"triage eval: {report.cases} cases, {report.alerts} alerts, {len(report.outcomes)} labelled\n"
        f"class accuracy    {report.class_accuracy:.3f}  ({sum(o.class_ok for o in report.outcomes)}"
        f"/{len(report.outcomes)})\n"
        f"severity accuracy {report.severity_accuracy:.3f}  ({sum(bool(o.severity_ok) for o in sev)}/{len(sev)})\n"
        f"cases all right   {report.case_accuracy:.3f}"
    )
    matrix = Table("expected \\ got", *CLASSES, title="confusion matrix (class)")
    confusion = report.confusion()
    for exp in CLASSES:
        matrix.add_row(exp, *(str(confusion.get((exp, got), 0)) for got in CLASSES))
    out.append(matrix)
    tags = Table("tag", "correct", "labelled", "accuracy", title="class accuracy by tag")
    for tag, (ok, n) in report.by_tag(cases).items():
        tags.add_row(tag, str(ok), str(n), f"{ok / n:.2f}")
    out.append(tags)
    wrong = report.wrong()
    lines = [f"wrong ({len(wrong)}):" if wrong else "no wrong decisions"]
    for o in wrong[:show_wrong]:
        exp = o.expected.class_ + (f"/{o.expected.severity.value}" if o.expected.severity else "")
        lines.append(f"  {o.case_id} (line {o.line}, alert #{o.index}): expected {exp}, "
                     f"got {o.got_class}/{o.got_severity.value}: {'; '.join(o.reasons)[:400]}")  # fmt: skip
    if len(wrong) > show_wrong:
        lines.append(f"  … and {len(wrong) - show_wrong} more")
    out.append("\n".join(lines))
    return out


def shipped_dataset() -> Traversable:
    """The golden dataset shipped as package data (services/triage/data/), found the same way in a checkout and an
    install (tests/evals/make_triage_golden.py writes it)."""
    return resources.files("services.triage") / "data" / "triage_golden.jsonl"

"""The investigation's structured results and the decisions around them (docs/investigation.md).

Three phases share nothing but these values: prepare -> `InvestigationContext`; investigate -> `Findings` (with the
task list kept here, in code, never trusted to the prompt); report -> `ReportDraft`, which the grounding guard
checks before it becomes the `InvestigationReport` of diagnosis.ready. Rendering of the static facts and of the
knowledge catalog is pure too: the use case gathers them, these functions only word them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from schemas.events import DiagnosisReadyPayload, IncidentOpenedPayload
from schemas.investigation import Claim, InvestigationReport
from services.diagnosis.domain.facts import Commit

MAX_TASKS = 12
MAX_KNOWLEDGE = 6  # entries the model may choose from the catalog
KNOWLEDGE_BODY_CHARS = 4000  # of one chosen entry's body given to prepare
DESCRIPTION_CHARS = 2000  # of the alert's description given to prepare
STACK_CHARS = 6000  # of the stack trace given to prepare

_Item = Field(max_length=400)


# ------------------------------------------------------------------ what the model answers, phase by phase
class KnowledgeChoice(BaseModel):
    """The knowledge entries (by keyword, from the catalog) that matter for this incident: guidelines first."""

    keywords: list[str] = Field(default_factory=list, max_length=MAX_KNOWLEDGE)


class InvestigationContext(BaseModel):
    """The investigation's starting point: a fraction of what prepare read."""

    goal: str = Field(min_length=1, max_length=600)
    alert_summary: str = Field(max_length=1200)
    guidelines: list[str] = Field(default_factory=list, max_length=10)
    useful_queries: list[str] = Field(default_factory=list, max_length=10)
    established_facts: list[str] = Field(default_factory=list, max_length=20)


class Plan(BaseModel):
    """The investigation's tasks, in the order to do them (each one line)."""

    tasks: list[str] = Field(min_length=1, max_length=MAX_TASKS)


class Findings(BaseModel):
    """What the investigation established; `ready` means enough is known for the report."""

    ready: bool = True
    hypothesis: str = Field(max_length=4000)
    facts: list[str] = Field(default_factory=list, max_length=30)
    open_questions: list[str] = Field(default_factory=list, max_length=10)


class ReportDraft(BaseModel):
    """The structured root cause. Name only files, lines, symbols and commits from the findings; quote code exactly."""

    summary: str = Field(max_length=4000)
    root_cause: str = Field(max_length=8000)
    evidence: list[Claim] = Field(default_factory=list, max_length=20)
    suspect_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,64}$")
    confidence: float = Field(ge=0.0, le=1.0)
    fixability: Literal["fixable", "needs-human", "not-code", "unknown"] = "unknown"
    next_steps: list[str] = Field(default_factory=list, max_length=10)
    would_have_helped: list[str] = Field(default_factory=list, max_length=10)


@dataclass(frozen=True)
class Outcome:
    """What the investigation came to: a grounded report (and its suspect commit when grounded), or why not."""

    report: InvestigationReport | None
    fallback_reason: str | None = None
    suspect: Commit | None = None


# ------------------------------------------------------------------ the task list, kept in code
TaskStatus = Literal["open", "done", "dropped"]


@dataclass
class Task:
    id: int
    text: str
    status: TaskStatus = "open"


@dataclass
class TaskList:
    """The plan as the platform keeps it: the model changes it only through `update_tasks`, by id."""

    tasks: list[Task] = field(default_factory=list)
    updates: int = 0

    @classmethod
    def of(cls, plan: Plan) -> TaskList:
        texts = [t.strip()[:300] for t in plan.tasks if t.strip()][:MAX_TASKS]
        return cls([Task(i, text) for i, text in enumerate(texts, start=1)])

    def update(self, done: Sequence[int] = (), dropped: Sequence[int] = (), add: Sequence[str] = ()) -> str:
        known = {t.id: t for t in self.tasks}
        unknown = [i for i in (*done, *dropped) if i not in known]
        if unknown:
            raise ValueError(f"no task with id {unknown}; the tasks are {sorted(known)}")
        for i in done:
            known[i].status = "done"
        for i in dropped:
            known[i].status = "dropped"
        room = MAX_TASKS - len(self.tasks)
        for text in [a.strip()[:300] for a in add if a.strip()][: max(room, 0)]:
            self.tasks.append(Task(max((t.id for t in self.tasks), default=0) + 1, text))
        self.updates += 1
        return self.render()

    @property
    def open(self) -> list[Task]:
        return [t for t in self.tasks if t.status == "open"]

    def render(self) -> str:
        lines = [f"{t.id}. [{t.status}] {t.text}" for t in self.tasks]
        return "Task list (kept by the platform; change it with update_tasks):\n" + "\n".join(lines)


UPDATE_TASKS = "update_tasks"
UPDATE_TASKS_TOOL: dict[str, Any] = {
    "name": UPDATE_TASKS,
    "description": "Mark tasks of the investigation's task list done or dropped (by id), or add new ones. "
    "Handled by the platform; it touches nothing else.",
    "input_schema": {
        "type": "object",
        "properties": {
            "done": {"type": "array", "items": {"type": "integer"}},
            "dropped": {"type": "array", "items": {"type": "integer"}},
            "add": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        },
        "additionalProperties": False,
    },
}


class TaskControl:
    """The task list as the tool loop's control (pagerpatch.llm.loop.LoopControl): the `update_tasks` tool is
    answered here, and the list as it stands closes every step's latest message (after the cache markers, never
    stored in the history)."""

    def __init__(self, tasks: TaskList, steps: int) -> None:
        self.tasks = tasks
        self.steps = steps

    def definitions(self) -> list[dict[str, Any]]:
        return [UPDATE_TASKS_TOOL]

    def handles(self, name: str) -> bool:
        return name == UPDATE_TASKS

    def handle(self, name: str, arguments: dict[str, Any]) -> str:
        def ints(key: str) -> list[int]:
            value = arguments.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise ValueError(f"{key} must be a list of task ids")
            return value

        add = arguments.get("add") or []
        if not isinstance(add, list) or not all(isinstance(a, str) for a in add):
            raise ValueError("add must be a list of strings")
        return self.tasks.update(ints("done"), ints("dropped"), add)

    def system(self) -> str | None:
        return f"{self.tasks.render()}\nStep budget: {self.steps} steps in all."


# ------------------------------------------------------------------ what prepare is given
class Entry(Protocol):
    """A knowledge entry as the knowledge base gives it (pagerpatch.knowledge.KnowledgeEntry)."""

    @property
    def kind(self) -> str: ...  # pragma: no cover

    @property
    def keyword(self) -> str: ...  # pragma: no cover

    @property
    def description(self) -> str: ...  # pragma: no cover

    @property
    def tags(self) -> list[str]: ...  # pragma: no cover

    @property
    def alerts(self) -> list[str]: ...  # pragma: no cover

    @property
    def body(self) -> str: ...  # pragma: no cover


@dataclass(frozen=True)
class StaticFacts:
    """What the platform gathered in code before any model call."""

    incident: IncidentOpenedPayload
    deterministic: DiagnosisReadyPayload
    stack_files: tuple[str, ...] = ()
    recent_commits: tuple[str, ...] = ()  # "<short sha> <date> <author>: <subject> [files]"
    catalog_entry: dict[str, Any] | None = None

    def render(self) -> str:
        i, d = self.incident, self.deterministic
        alert = {
            "title": i.title,
            "service": i.service,
            "severity": str(i.severity),
            "labels": i.labels,
            "commit": i.commit,
        }
        parts = [f"<alert>\n{json.dumps(alert, ensure_ascii=False, default=str)}"]
        if i.description:
            parts.append(f"description:\n{_clip(i.description, DESCRIPTION_CHARS)}")
        if i.stack_trace:
            parts.append(f"stack trace:\n{_clip(i.stack_trace, STACK_CHARS)}")
        parts[-1] += "\n</alert>"
        suspect = d.suspect_commit
        det = [
            f"strategy stacktrace-blame, confidence {d.confidence:.2f}, base commit {d.base_commit}",
            f"root cause: {d.root_cause}",
            f"suspect commit: {suspect.sha} {suspect.subject!r} ({suspect.author})" if suspect else "no suspect",
        ]
        det += [
            f"evidence: {e.file}:{e.line}" + (f" in {e.function}()" if e.function else "") + f" {e.note}"
            for e in d.evidence[:10]
        ]
        det += [f"set aside: {t}" for t in d.tried[:10]]
        parts.append("<deterministic_diagnosis>\n" + "\n".join(det) + "\n</deterministic_diagnosis>")
        if self.stack_files:
            parts.append("<files_on_the_stack>\n" + "\n".join(self.stack_files) + "\n</files_on_the_stack>")
        if self.recent_commits:
            parts.append(
                "<recent_commits_touching_them>\n"
                + "\n".join(self.recent_commits)
                + "\n</recent_commits_touching_them>"
            )
        if self.catalog_entry is not None:
            parts.append(f"<service_catalog>\n{json.dumps(self.catalog_entry, default=str)}\n</service_catalog>")
        return "\n\n".join(parts)


def render_catalog(entries: Sequence[Entry]) -> str:
    """The knowledge catalog as the model chooses from it: frontmatter only (a runbook's `alerts:` patterns too),
    guidelines first."""
    order = {"guideline": 0, "knowledge": 1, "runbook": 2}
    rows = sorted(entries, key=lambda e: order.get(e.kind, 3))
    return "\n".join(
        f"- {e.keyword} ({e.kind}): {e.description} [tags: {', '.join(e.tags)}]"
        + (f" [alerts: {'; '.join(e.alerts)}]" if e.alerts else "")
        for e in rows
    )


def render_knowledge(entries: Sequence[Entry]) -> str:
    order = {"guideline": 0, "knowledge": 1, "runbook": 2}
    rows = sorted(entries, key=lambda e: order.get(e.kind, 3))
    return "\n\n".join(
        f'<knowledge kind="{e.kind}" keyword="{e.keyword}">\n{_clip(e.body, KNOWLEDGE_BODY_CHARS)}\n</knowledge>'
        for e in rows
    )


def chosen(catalog: Sequence[Entry], choice: KnowledgeChoice, runbooks: Sequence[Entry]) -> list[Entry]:
    """The entries prepare reads: the runbooks matching the alert, then what the model chose that exists (a
    keyword not in the catalog is ignored), without duplicates, at most MAX_KNOWLEDGE + the runbooks."""
    by_key = {e.keyword: e for e in catalog}
    out: dict[str, Entry] = {e.keyword: e for e in runbooks}
    for k in choice.keywords[:MAX_KNOWLEDGE]:
        if k in by_key:
            out.setdefault(k, by_key[k])
    return list(out.values())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters cut]"

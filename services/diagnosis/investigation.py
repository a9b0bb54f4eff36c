"""The investigation agent: prepare -> investigate -> report over the agent runtime, then the grounding guard
(docs/investigation.md). The phases share nothing but structured results; every model call goes through
`pagerpatch.llm.LlmRuntime` (redacted, cached, costed, budgeted, audited).

A model failure is never raised to the stage: over budget, unavailable (after the runtime's own retries), an
invalid answer or a provider error all end in an `Outcome` without a report and with the reason, and the
deterministic diagnosis stands. The investigation is not retried later: a diagnosis now beats a better one
after an outage, and the redelivery of an unavailable model would block the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pagerpatch.llm import BudgetExceeded, LlmError, LlmRuntime, LlmUnavailable, Spent, ToolCall, phase_prompt
from pagerpatch.settings import ServiceEntry
from schemas.events import DiagnosisReadyPayload, IncidentOpenedPayload
from schemas.investigation import InvestigationReport
from services.diagnosis.domain import grounding
from services.diagnosis.domain.grounding import Checked, Failure
from services.diagnosis.domain.investigation import (
    Findings,
    InvestigationContext,
    KnowledgeChoice,
    Outcome,
    Plan,
    ReportDraft,
    StaticFacts,
    TaskControl,
    TaskList,
    chosen,
    render_catalog,
    render_knowledge,
)
from services.diagnosis.ports import GitError, History, Knowledge

log = logging.getLogger(__name__)
AGENT = "diagnosis"
RECENT_COMMITS = 10
TOOL_FACTS = 40  # facts drawn from tool outputs handed to the report phase
NOT_READY = (
    "Your findings are not marked ready: go on investigating ({left} step(s) left), then answer with the "
    "findings again, `ready: true` once they support a report."
)


@dataclass(frozen=True)
class HistorySources:
    """The grounding guard's view of the repository at the base commit, through the History port (blocking)."""

    history: History
    base: str

    def files(self) -> frozenset[str]:
        return frozenset(self.history.files(self.base))

    def text(self, file: str) -> str | None:
        return self.history.read(file, self.base)

    def commit(self, sha: str) -> str | None:
        try:
            full = self.history.resolve(sha)
        except GitError:  # no such commit
            return None
        if full == self.base or self.history.descends(self.base, full):
            return full
        return None

    def mentioning(self, word: str) -> list[str]:
        return self.history.mentioning(word, self.base)


class ReportInput(BaseModel):
    """What the report phase starts from: the context, the findings and the facts the tools established."""

    context: InvestigationContext
    findings: Findings
    tasks: list[str] = Field(default_factory=list)
    tool_facts: list[str] = Field(default_factory=list)


class _Cached:
    """The view's answers kept for one report (the guard asks for the same files and commits many times)."""

    def __init__(self, view: HistorySources) -> None:
        self.view = view
        self._files: frozenset[str] | None = None
        self._texts: dict[str, str | None] = {}
        self._commits: dict[str, str | None] = {}

    def files(self) -> frozenset[str]:
        if self._files is None:
            self._files = self.view.files()
        return self._files

    def text(self, file: str) -> str | None:
        if file not in self._texts:
            self._texts[file] = self.view.text(file) if file in self.files() else None
        return self._texts[file]

    def commit(self, sha: str) -> str | None:
        if sha not in self._commits:
            self._commits[sha] = self.view.commit(sha)
        return self._commits[sha]

    def mentioning(self, word: str) -> list[str]:
        return self.view.mentioning(word)


class Investigation:
    """The Investigator port on the agent runtime."""

    def __init__(
        self, runtime: LlmRuntime, knowledge: Knowledge, catalog: dict[str, ServiceEntry] | None = None
    ) -> None:
        self.runtime = runtime
        self.knowledge = knowledge
        self.catalog = catalog or {}

    @property
    def enabled(self) -> bool:
        return self.runtime.enabled

    async def investigate(
        self,
        incident_id: str,
        incident: IncidentOpenedPayload,
        deterministic: DiagnosisReadyPayload,
        history: History,
        team: str | None,
        at: datetime | None = None,
    ) -> Outcome:
        spent = Spent()
        run = _Run(self, incident_id, incident, deterministic, history, team, spent, at)
        try:
            return await run.all()
        except BudgetExceeded as exc:
            why = f"over budget: {exc}"
        except LlmUnavailable as exc:
            why = f"model unavailable: {exc}"
        except LlmError as exc:  # invalid answers after the repairs, a provider error, the model switched off
            why = f"model failed: {type(exc).__name__}: {exc}"
        log.warning("incident %s: investigation fell back to the deterministic diagnosis: %s", incident_id, why)
        return Outcome(None, f"{why} (after ${spent.cost_usd:.4f} in {spent.calls} call(s))"[:500])


class _Run:
    """One incident's investigation (the three phases and the guard)."""

    def __init__(
        self,
        agent: Investigation,
        incident_id: str,
        incident: IncidentOpenedPayload,
        deterministic: DiagnosisReadyPayload,
        history: History,
        team: str | None,
        spent: Spent,
        at: datetime | None = None,
    ) -> None:
        self.rt = agent.runtime
        self.at = at  # the incident's time: "now" of the observability tools' default range
        self.agent = agent
        self.incident_id = incident_id
        self.incident = incident
        self.det = deterministic
        self.history = history
        self.team = team
        self.spent = spent
        self.base = deterministic.base_commit
        self.stack_files = tuple(dict.fromkeys(e.file for e in deterministic.evidence))

    def _call(self) -> dict[str, Any]:
        return {"agent": AGENT, "incident_id": self.incident_id, "team": self.team, "spent": self.spent}

    async def all(self) -> Outcome:
        context = await self.prepare()
        findings, steps, facts, tasks, calls = await self.investigate(context)
        report_in = ReportInput(context=context, findings=findings, tasks=tasks, tool_facts=facts)
        return await self.report(report_in, steps, calls)

    # ------------------------------------------------------------------ 1. prepare (cheap model, no tools)
    async def prepare(self) -> InvestigationContext:
        recent = await asyncio.to_thread(self.history.recent_commits, self.stack_files, self.base, RECENT_COMMITS)
        entry = self.agent.catalog.get(self.incident.service)
        static = StaticFacts(
            self.incident,
            self.det,
            self.stack_files,
            tuple(recent),
            entry.model_dump(mode="json") if entry else None,
        ).render()
        catalog = list(await self.agent.knowledge.catalog())
        runbooks = list(await self.agent.knowledge.runbooks_for(self.incident.title, dict(self.incident.labels)))
        choice = KnowledgeChoice()
        if catalog:
            alert = json.dumps({"title": self.incident.title, "service": self.incident.service,
                                "labels": self.incident.labels, "exception": self.det.exception_type})  # fmt: skip
            choice = await self.rt.structured(
                step="prepare_select",
                output=KnowledgeChoice,
                prompt=f"<alert>\n{alert}\n</alert>\n\n<catalog>\n{render_catalog(catalog)}\n</catalog>\n\n"
                "Choose the entries that matter for this incident: the guidelines that apply first, then knowledge "
                "and runbooks. Answer with their keywords only.",
                **self._call(),
            )
        entries = []
        for e in chosen(catalog, choice, runbooks):
            entries.append(e if e.body else (await self.agent.knowledge.get(e.keyword)) or e)
        knowledge = f"\n\n<knowledge_base>\n{render_knowledge(entries)}\n</knowledge_base>" if entries else ""
        return await self.rt.structured(
            step="prepare",
            output=InvestigationContext,
            prompt=f"{static}{knowledge}\n\nWrite the investigation context.",
            **self._call(),
        )

    # ------------------------------------------------------------------ 2. investigate (main model, tools)
    async def investigate(self, context: InvestigationContext) -> tuple[Findings, int, list[str], list[str], int]:
        plan_conv = phase_prompt(context, phase="plan", task="Make the investigation's task list (at most 8 tasks).")
        plan = await self.rt.structured(step="plan", output=Plan, messages=plan_conv.messages(), **self._call())
        tasks = TaskList.of(plan)
        spec = self.rt.governance.agent(AGENT)
        steps = spec.max_steps or self.rt.llm.max_steps
        parallel = spec.max_parallel_tools or self.rt.llm.max_parallel_tools
        workspace = await asyncio.to_thread(self.history.workspace)
        conv = phase_prompt(
            context,
            phase="investigate",
            task=f"Investigate. At most {parallel} tool calls per step and {steps} steps; keep the task list up "
            "to date with update_tasks; answer with the findings when ready for a report.",
        )
        tool_context: dict[str, Any] = {"workspace": str(workspace) if workspace else None, "rev": self.base}
        if self.at is not None:
            tool_context["now"] = self.at
        control = TaskControl(tasks, steps)
        turns, calls = 0, list[ToolCall]()
        while True:  # findings not `ready` with steps left: the investigation goes on in the same conversation
            result = await self.rt.run_tools(
                agent=AGENT,
                step="investigate",
                conversation=conv,
                output=Findings,
                incident_id=self.incident_id,
                team=self.team,
                max_steps=steps - turns,
                tool_context=tool_context,
                control=control,
                max_calls_per_turn=parallel,
            )
            self.spent.usage = self.spent.usage + result.spent.usage
            self.spent.cost_usd += result.spent.cost_usd
            self.spent.calls += result.spent.calls
            turns, calls = turns + result.turns, calls + result.tool_calls
            assert result.output is not None  # output= was given: the loop always ends in a validated answer
            if result.output.ready or result.outcome == "max_steps" or turns >= steps:
                break
            conv.user(NOT_READY.format(left=steps - turns), "investigate:not-ready")
        facts = [f"{c.name}: {c.facts}" for c in calls if c.outcome == "ok"][-TOOL_FACTS:]
        if result.outcome == "max_steps" or not result.output.ready:
            facts.append("the investigation's step budget ran out before it was marked ready")
        task_lines = [f"[{t.status}] {t.text}" for t in tasks.tasks]
        return result.output, turns, facts, task_lines, len(calls)

    # ------------------------------------------------------------------ 3. report (cheap model) + grounding
    async def report(self, report_in: ReportInput, steps: int, tool_calls: int) -> Outcome:
        conv = phase_prompt(report_in, phase="report", task="Write the incident's structured root cause.")
        draft = await self.rt.structured(step="report", output=ReportDraft, messages=conv.messages(), **self._call())
        view = _Cached(HistorySources(self.history, self.base))
        checked = await asyncio.to_thread(grounding.check_report, draft, view, self.stack_files)
        retried = False
        if not checked.ok:
            retried = True
            draft, checked = await self._fix(report_in, draft, checked.failures, view)
        final = grounding.scrub(draft, checked.failures)
        summary = grounding.grounding_of(checked, retried=retried)
        if not grounding.stands(final, checked):
            why = f"ungrounded: {summary.rejected} of {summary.checked} named claims could not be verified"
            return Outcome(None, f"{why} (after ${self.spent.cost_usd:.4f})")
        suspect_sha = view.commit(final.suspect_commit) if final.suspect_commit else None
        suspect = await asyncio.to_thread(self.history.commit, suspect_sha) if suspect_sha else None
        report = InvestigationReport(
            summary=final.summary,
            root_cause=final.root_cause,
            evidence=final.evidence,
            suspect_commit=suspect_sha,
            confidence=grounding.lowered_confidence(final.confidence, checked),
            fixability=final.fixability,
            next_steps=[s[:500] for s in final.next_steps],
            would_have_helped=[s[:500] for s in final.would_have_helped],
            grounding=summary,
            steps=steps,
            tool_calls=tool_calls,
            cost_usd=round(self.spent.cost_usd, 6),
        )
        return Outcome(report, None, suspect)

    async def _fix(
        self, report_in: ReportInput, draft: ReportDraft, failures: Sequence[Failure], view: _Cached
    ) -> tuple[ReportDraft, Checked]:
        """The report back to the model once with what could not be verified; the corrected one is checked again."""
        listed = "\n".join(f"- {f.describe()}" for f in failures)
        prompt = (
            f"<findings>\n{report_in.model_dump_json()}\n</findings>\n\n<report>\n{draft.model_dump_json()}\n</report>"
            f"\n\nThe platform could not verify these claims of the report against the repository:\n{listed}\n\n"
            "Give the report again: correct each claim from the findings, or leave it out."
        )
        try:
            fixed = await self.rt.structured(step="report_fix", output=ReportDraft, prompt=prompt, **self._call())
        except (LlmError, BudgetExceeded, LlmUnavailable) as exc:  # the first report stands, scrubbed
            log.warning(
                "incident %s: the report's correction failed (%s); dropping its failures", self.incident_id, exc
            )
            return draft, await asyncio.to_thread(grounding.check_report, draft, view, self.stack_files)
        return fixed, await asyncio.to_thread(grounding.check_report, fixed, view, self.stack_files)

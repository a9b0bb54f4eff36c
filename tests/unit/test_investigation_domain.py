"""The investigation's pure parts: the task list kept in code, the knowledge chosen for prepare, which diagnosis
stands (report or deterministic, and the suspect), and what `incidents show` prints of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pagerpatch.cli.incidents import investigation_lines
from pagerpatch.knowledge import KnowledgeEntry
from schemas.events import DiagnosisReady, DiagnosisReadyPayload, Evidence, IncidentOpenedPayload, SuspectCommit
from schemas.investigation import Claim, Grounding, InvestigationReport
from services.diagnosis.domain import outcome
from services.diagnosis.domain.facts import Commit
from services.diagnosis.domain.investigation import (
    KnowledgeChoice,
    Outcome,
    Plan,
    StaticFacts,
    TaskControl,
    TaskList,
    chosen,
    render_catalog,
)

BASE, OLD, NEW = "a" * 40, "b" * 40, "c" * 40
WHEN = datetime(2024, 3, 2, 12, tzinfo=UTC)


def deterministic() -> DiagnosisReadyPayload:
    return DiagnosisReadyPayload(
        repo="shop",
        base_commit=BASE,
        root_cause="KeyError raised in apply_coupon() at shop/pricing.py:6.",
        suspect_commit=SuspectCommit(sha=OLD, subject="blamed"),
        evidence=[Evidence(file="shop/pricing.py", line=6, commit=OLD)],
        confidence=0.6,
        candidates=[SuspectCommit(sha=NEW, subject="newer")],
    )


def report(**over: object) -> InvestigationReport:
    values: dict[str, object] = {
        "summary": "Unknown coupons crash.",
        "root_cause": "apply_coupon() indexes COUPONS directly.",
        "evidence": [
            Claim(file="shop/pricing.py", line=6, symbol="apply_coupon", quote="rate = COUPONS[code]"),
            Claim(file="shop/pricing.py", note="the module"),
        ],
        "suspect_commit": NEW,
        "confidence": 0.85,
        "grounding": Grounding(checked=9, rejected=2, retried=True, rejected_by_kind={"symbol": 1, "commit": 1}),
        "steps": 4,
        "tool_calls": 6,
        "cost_usd": 0.0123,
    }
    return InvestigationReport(**{**values, **over})


def test_the_task_list_changes_only_through_update_tasks_by_id() -> None:
    tasks = TaskList.of(Plan(tasks=["Read the line", "  ", "Find the commit"]))
    control = TaskControl(tasks, steps=8)
    assert [t.text for t in tasks.tasks] == ["Read the line", "Find the commit"]
    assert control.handles("update_tasks") and not control.handles("read_file")
    shown = control.handle("update_tasks", {"done": [1], "add": ["Check the tests"]})
    assert "1. [done] Read the line" in shown and "3. [open] Check the tests" in shown
    assert [t.id for t in tasks.open] == [2, 3]
    with pytest.raises(ValueError, match=r"no task with id \[7\]"):
        control.handle("update_tasks", {"done": [7]})
    with pytest.raises(ValueError, match="list of task ids"):
        control.handle("update_tasks", {"dropped": "all"})
    system = control.system()
    assert system is not None and "Step budget: 8 steps" in system and "2. [open] Find the commit" in system


def test_prepare_reads_the_matching_runbooks_and_the_chosen_entries_that_exist() -> None:
    def entry(kind: str, keyword: str) -> KnowledgeEntry:
        return KnowledgeEntry(kind, keyword, f"about {keyword}", ["t"], [], f"{keyword}.md", "body")  # type: ignore[arg-type]

    catalog = [entry("runbook", "rb"), entry("knowledge", "kn"), entry("guideline", "gl"), entry("runbook", "rb2")]
    catalog[0] = KnowledgeEntry("runbook", "rb", "about rb", [], ["*KeyError*", "service=shop"], "rb.md", "body")
    rendered = render_catalog(catalog).splitlines()
    assert rendered[0] == "- gl (guideline): about gl [tags: t]"  # guidelines first
    assert rendered[2] == "- rb (runbook): about rb [tags: ] [alerts: *KeyError*; service=shop]"  # runbooks' patterns
    picked = chosen(catalog, KnowledgeChoice(keywords=["gl", "made-up", "rb2", "gl"]), [catalog[0]])
    assert [e.keyword for e in picked] == ["rb", "gl", "rb2"]


def test_static_facts_carry_the_alert_as_data_and_the_deterministic_suspect() -> None:
    incident = IncidentOpenedPayload(
        fingerprint="f",
        title="coupon fails",
        service="shop-api",
        severity="P2",
        description="x" * 5000,
        stack_trace="Traceback ...",
    )
    text = StaticFacts(
        incident, deterministic(), ("shop/pricing.py",), ("bbbbbbb 2024-03-02 Eve: blamed",), {"tier": 1}
    ).render()
    assert text.startswith("<alert>") and "</alert>" in text and "more characters cut" in text
    assert f"suspect commit: {OLD} 'blamed'" in text and "<files_on_the_stack>\nshop/pricing.py" in text
    assert '<service_catalog>\n{"tier": 1}' in text


def test_a_grounded_report_stands_with_its_suspect_and_the_blamed_one_becomes_the_first_candidate() -> None:
    commit = Commit(NEW, (OLD,), "Eve", "eve@example.com", WHEN, WHEN, "pricing: direct lookup")
    payload = outcome.decide(deterministic(), Outcome(report(), None, commit))
    assert payload.strategy == "llm-investigation" and payload.fallback_reason is None
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == NEW
    assert payload.suspect_commit.author == "Eve <eve@example.com>"
    assert [c.sha for c in payload.candidates] == [OLD]  # NEW is the suspect now, not a candidate
    assert payload.root_cause == "apply_coupon() indexes COUPONS directly." and payload.confidence == 0.85
    assert [(e.file, e.line, e.function) for e in payload.evidence] == [
        ("shop/pricing.py", 6, "apply_coupon"),  # the report's (a claim without a line is not an Evidence)
        ("shop/pricing.py", 6, None),  # then the deterministic evidence
    ]
    assert "code: rate = COUPONS[code]" in payload.evidence[0].note


def test_an_ungrounded_suspect_keeps_the_deterministic_one() -> None:
    payload = outcome.decide(deterministic(), Outcome(report(suspect_commit=None), None, None))
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == OLD
    assert [c.sha for c in payload.candidates] == [NEW]


def test_without_a_report_the_deterministic_diagnosis_stands_with_the_reason() -> None:
    payload = outcome.decide(deterministic(), Outcome(None, "model unavailable: overloaded"))
    assert payload == deterministic().model_copy(update={"fallback_reason": "model unavailable: overloaded"})
    assert outcome.with_fallback(deterministic(), "x" * 600).fallback_reason == "x" * 499 + "…"


def test_incidents_show_prints_the_report_with_grounding_counts_and_cost() -> None:
    ready = DiagnosisReady.create(outcome.decide(deterministic(), Outcome(report(), None)), source="diagnosis")
    lines = investigation_lines([ready])
    assert lines[0] == "investigation: 4 step(s), 6 tool call(s), $0.0123; fixability unknown"
    assert lines[1] == (
        "grounding: 9 claim(s) checked, 2 rejected (1 commit, 1 symbol); the report went back to the model once"
    )
    fallback = DiagnosisReady.create(outcome.with_fallback(deterministic(), "over budget"), source="diagnosis")
    assert investigation_lines([fallback]) == ["investigation: none (over budget)"]
    assert investigation_lines([]) == []

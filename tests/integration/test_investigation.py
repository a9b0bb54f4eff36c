"""The investigation agent end to end: the real use case on a real git repository (cached clone, per-incident
worktree, real builtin tools), the real agent runtime and Anthropic SDK against the fake Messages API, scripted per
test; the shipped config/ (agents.yaml, tools.yaml, prompts)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from pagerpatch.git.worktrees import Workspaces
from pagerpatch.knowledge import KnowledgeEntry, MemoryKnowledge
from pagerpatch.llm import LlmRuntime, ToolRegistry
from pagerpatch.llm.context import FACTS_MARKER
from pagerpatch.settings import RepoConfig, ServiceEntry
from schemas.events import DiagnosisReadyPayload, IncidentOpenedPayload, Severity
from services.diagnosis.adapters import GitCheckouts
from services.diagnosis.investigation import Investigation
from services.diagnosis.memory import MemoryAudit, MemoryRepos
from services.diagnosis.usecase import Diagnosis
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic, Recorded
from tests.support.git import Repo
from tests.support.llm_env import llm_settings

pytestmark = [pytest.mark.integration, pytest.mark.skipif(shutil.which("git") is None, reason="no git")]

SHIPPED = Path(__file__).resolve().parents[2] / "config"
TRIGGER = "from shop.pricing import apply_coupon; apply_coupon(100.0, 'NOPE')"
SAFE = """\
COUPONS = {"SAVE10": 0.1}


def apply_coupon(total, code):
    code = code.strip()
    rate = COUPONS.get(code, 0.0)
    return round(total * (1 - rate), 2)
"""
BROKEN = SAFE.replace("COUPONS.get(code, 0.0)", "COUPONS[code]")
KNOWLEDGE = [
    KnowledgeEntry(
        "guideline",
        "cite-code",
        "Cite file:line for every claim",
        ["evidence"],
        [],
        "g/cite.md",
        "Every claim names a file and line.",
    ),
    KnowledgeEntry(
        "knowledge",
        "coupons",
        "How coupons are stored",
        ["pricing"],
        [],
        "k/coupons.md",
        "Coupons live in shop/pricing.py COUPONS.",
    ),
    KnowledgeEntry(
        "runbook",
        "coupon-errors",
        "Coupon KeyError runbook",
        [],
        ["*coupon*"],
        "r/coupon.md",
        "Check the last change to apply_coupon.",
    ),
    KnowledgeEntry("knowledge", "search-ranking", "Search ranking", ["search"], [], "k/search.md", "BM25 " * 50),
]


class Shop:
    """A repository whose last commit broke coupon lookups, and the traceback that bug really throws."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.repo = Repo.init(tmp_path / "shop")
        self.init = self.repo.commit({"shop/__init__.py": "", "shop/pricing.py": SAFE}, "initial import")
        self.bug = self.repo.commit({"shop/pricing.py": BROKEN}, "pricing: look coupons up directly", who="Eve")
        self.trace = self.repo.run(TRIGGER).stderr

    def diagnosis(
        self, fake: FakeAnthropic, config: Path = SHIPPED, pool: Any = None, obs: Any = None, **llm: Any
    ) -> Diagnosis:
        settings = llm_settings(fake.url, config, **llm).model_copy(update={"observability": obs} if obs else {})
        self.runtime = LlmRuntime.create(settings, pool, ToolRegistry(settings))
        catalog = {"shop-api": ServiceEntry(tier=1, team="payments", repo="shop")}
        investigator = Investigation(self.runtime, MemoryKnowledge(KNOWLEDGE), catalog)
        cfg = RepoConfig(name="shop", path=str(self.repo.path), services=["shop-api"])
        return Diagnosis(
            repos=MemoryRepos({"shop": cfg}),
            checkouts=GitCheckouts(Workspaces(self.tmp / "ws")),
            audit=MemoryAudit(),
            investigator=investigator,
        )

    async def diagnose(self, diagnosis: Diagnosis, at: Any = None, **fields: Any) -> DiagnosisReadyPayload:
        values: dict[str, Any] = {
            "fingerprint": "f" * 16,
            "title": "coupon checkout fails",
            "service": "shop-api",
            "severity": Severity.P2,
            "repo": "shop",
            "stack_trace": self.trace,
        }
        payload = await diagnosis.diagnose(uuid.UUID(int=7), IncidentOpenedPayload(**{**values, **fields}), at=at)
        assert payload is not None
        return payload


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path)


def prepared(keywords: list[str] | None = None) -> list[fa.Reply]:
    return [
        fa.tool_use("emit_knowledge_choice", {"keywords": keywords or ["cite-code", "coupons"]}),
        fa.tool_use(
            "emit_investigation_context",
            {
                "goal": "Find why apply_coupon raises KeyError for unknown codes",
                "alert_summary": "KeyError 'NOPE'",
                "guidelines": ["Cite file:line"],
                "useful_queries": ["history of shop/pricing.py"],
                "established_facts": ["KeyError raised in apply_coupon at shop/pricing.py:6"],
            },
        ),
        fa.tool_use("emit_plan", {"tasks": ["Read the failing line", "Find the commit that changed it"]}),
    ]


def findings(bug: str) -> fa.Reply:
    return fa.tool_use(
        "emit_findings",
        {
            "ready": True,
            "hypothesis": f"{bug[:7]} replaced COUPONS.get with COUPONS[code]",
            "facts": [f"shop/pricing.py:6 is `rate = COUPONS[code]`, last changed by {bug[:7]}"],
        },
    )


def report(bug: str, **over: Any) -> fa.Reply:
    values: dict[str, Any] = {
        "summary": "Unknown coupon codes crash checkout.",
        "root_cause": f"`apply_coupon()` in shop/pricing.py:6 indexes COUPONS directly since {bug[:7]}, so an "
        "unknown code raises KeyError.",
        "evidence": [
            {
                "file": "shop/pricing.py",
                "line": 6,
                "symbol": "apply_coupon",
                "commit": bug,
                "quote": "rate = COUPONS[code]",
                "note": "the failing line",
            },
            {"file": "shop/pricing.py", "line": 1, "symbol": "COUPONS", "quote": 'COUPONS = {"SAVE10": 0.1}'},
        ],
        "suspect_commit": bug[:10],
        "confidence": 0.9,
        "fixability": "fixable",
        "next_steps": ["Restore the .get() lookup with a default"],
        "would_have_helped": ["the coupon code in the alert's labels"],
    }
    return fa.tool_use("emit_report_draft", {**values, **over})


def requests_of(fake: FakeAnthropic, tool: str) -> list[Recorded]:
    """The requests whose offered tools include `tool` (the answer tool names the phase)."""
    return [r for r in fake.requests if tool in [t["name"] for t in r.body.get("tools", [])]]


async def test_the_happy_path_prepares_investigates_in_parallel_reports_and_every_claim_is_grounded(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        *prepared(),
        fa.tool_uses(
            [
                ("read_file", {"path": "shop/pricing.py"}, "r1"),
                ("git_log", {"path": "shop/pricing.py"}, "r2"),
                ("update_tasks", {"done": [1]}, "r3"),
            ],
            say="Reading the code and its history.",
        ),
        fa.tool_uses(
            [
                ("git_show", {"commit": shop.bug[:7], "path": "shop/pricing.py"}, "r4"),
                ("update_tasks", {"done": [2]}, "r5"),
            ]
        ),
        findings(shop.bug),
        report(shop.bug),
    )
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic))

    assert payload.strategy == "llm-investigation" and payload.fallback_reason is None
    r = payload.report
    assert r is not None
    assert (r.grounding.checked, r.grounding.rejected, r.grounding.retried) == (13, 0, False)
    assert [c.file for c in r.evidence] == ["shop/pricing.py", "shop/pricing.py"] and r.confidence == 0.9
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == shop.bug == r.suspect_commit
    assert payload.root_cause == r.root_cause and payload.confidence == 0.9
    assert (r.steps, r.tool_calls) == (3, 3) and r.cost_usd > 0
    assert payload.evidence[0].file == "shop/pricing.py" and "rate = COUPONS[code]" in payload.evidence[0].note

    models = [(r.body["model"], r.body["tools"][-1]["name"]) for r in fake_anthropic.requests]
    assert models == [
        ("claude-haiku-4-5", "emit_knowledge_choice"),
        ("claude-haiku-4-5", "emit_investigation_context"),
        ("claude-sonnet-4-6", "emit_plan"),
        *[("claude-sonnet-4-6", "emit_findings")] * 3,
        ("claude-haiku-4-5", "emit_report_draft"),
    ]
    select, prepare, _, turn1, turn2, turn3, rep = fake_anthropic.requests
    assert "coupon-errors (runbook)" in select.text and "shop/pricing.py" not in select.text.split("<catalog>")[0]
    assert "Coupons live in shop/pricing.py COUPONS." in prepare.text  # chosen knowledge body
    assert "Check the last change to apply_coupon." in prepare.text  # the matching runbook, always
    assert "BM25" not in prepare.text  # not chosen: not read
    assert "look coupons up directly" in prepare.text  # static facts: the deterministic suspect
    # The investigation starts from the context only: no stack trace, no knowledge bodies
    assert "Traceback" not in turn1.text and "Coupons live in" not in turn1.text
    offered = [t["name"] for t in turn1.body["tools"]]
    assert offered == [
        "read_file",
        "search_code",
        "git_log",
        "git_blame",
        "git_show",
        "recent_commits",
        "update_tasks",
        "emit_findings",
    ]
    # parallel calls: both results come back in the next request; the task list is kept in code
    results = {
        b["tool_use_id"]: b for m in turn2.body["messages"] for b in m["content"] if b.get("type") == "tool_result"
    }
    assert "rate = COUPONS[code]" in json.dumps(results["r1"]) and "pricing: look coupons up" in json.dumps(
        results["r2"]
    )
    # the task list as it stands ends each request (after the cache markers); the system prompt stays the same
    assert "1. [done] Read the failing line" in turn2.body["messages"][-1]["content"][-1]["text"]
    assert "2. [done] Find the commit" in turn3.body["messages"][-1]["content"][-1]["text"]
    assert turn1.body["system"] == turn2.body["system"] == turn3.body["system"]
    # context discipline: turn 1's raw outputs are facts by turn 3
    assert FACTS_MARKER in turn3.text and "    6  " not in turn3.text
    # the report starts from the structured results only
    assert "Traceback" not in rep.text and "    6  " not in rep.text  # no raw tool output either...
    assert "shop/pricing.py has 7 lines" in rep.text  # ...but the facts the tools established


async def test_fabricated_names_go_back_once_then_are_dropped_and_never_reach_the_event(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    bad = {
        "root_cause": f"`apply_discount_v2()` in shop/pricing.py:6 breaks since {shop.bug[:7]}; see deadbee1234.",
        "evidence": [
            {"file": "shop/pricing.py", "line": 6, "symbol": "apply_coupon", "quote": "rate = COUPONS[code]"},
            {"file": "shop/pricing.py", "line": 4, "symbol": "apply_coupon"},
            {"file": "shop/pricing.py", "line": 5, "quote": "code = code.strip()"},
            {"file": "shop/pricing.py", "line": 6, "symbol": "apply_discount_v2"},
            {"file": "shop/pricing.py", "line": 5, "quote": "return total * rate"},
            {"file": "shop/pricing.py", "line": 4, "commit": "0123456789abcdef0123456789abcdef01234567"},
            {"file": "shop/pricing.py", "line": 7, "quote": "return round(total * (1 - rate), 2)"},
        ],
    }
    fake_anthropic.script(*prepared(), findings(shop.bug), report(shop.bug, **bad), report(shop.bug, **bad))
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic))

    fix = fake_anthropic.requests[-1]
    assert fix.body["model"] == "claude-haiku-4-5"
    listed = fix.text.split("could not verify these claims")[1]
    for failure in (
        "evidence[3]: symbol 'apply_discount_v2': not defined in shop/pricing.py",
        "evidence[4]: quote 'return total * rate': does not match line 5 of shop/pricing.py",
        "evidence[5]: commit '0123456789abcdef0123456789abcdef01234567': not in the base's history",
        "root_cause: commit 'deadbee1234'",
        "root_cause: symbol 'apply_discount_v2()'",
    ):
        assert failure in listed
    r = payload.report
    assert payload.strategy == "llm-investigation" and r is not None
    assert r.grounding.retried and r.grounding.rejected == 5
    assert r.grounding.rejected_by_kind == {"symbol": 2, "quote": 1, "commit": 2}
    assert [c.line for c in r.evidence] == [6, 4, 5, 7] and r.confidence < 0.9
    assert "[unverified]" in r.root_cause
    event = payload.model_dump_json()
    for fabricated in ("apply_discount_v2", "return total * rate", "0123456789abcdef", "deadbee1234"):
        assert fabricated not in event


async def test_a_report_that_stays_mostly_unverifiable_leaves_the_deterministic_diagnosis(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    bad = {
        "evidence": [{"file": "shop/payments.py", "line": 3}, {"file": "shop/pricing.py", "line": 80}],
        "suspect_commit": "feedface123",
    }
    fake_anthropic.script(*prepared(), findings(shop.bug), report(shop.bug, **bad), report(shop.bug, **bad))
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic))
    assert payload.strategy == "stacktrace-blame" and payload.report is None
    assert payload.fallback_reason is not None and payload.fallback_reason.startswith("ungrounded: ")
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == shop.bug  # blame still names it
    assert "feedface123" not in payload.model_dump_json()


async def test_a_model_unavailable_mid_investigation_falls_back_with_the_reason(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(*prepared(), fa.tool_use("read_file", {"path": "shop/pricing.py"}))
    fake_anthropic.always(fa.overloaded())
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic, max_retries=1))
    assert payload.strategy == "stacktrace-blame" and payload.report is None
    assert payload.fallback_reason is not None and payload.fallback_reason.startswith("model unavailable")
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == shop.bug
    assert len(fake_anthropic.requests) == 4 + 2  # prepare x2, plan, turn 1; then turn 2 and its one retry


async def test_over_budget_falls_back_without_calling_the_model(
    shop: Shop, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    text = (config / "agents.yaml").read_text()
    (config / "agents.yaml").write_text(text.replace("per_incident_usd: 2.0}", "per_incident_usd: 0.000001}", 1))
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic, config=config))
    assert payload.strategy == "stacktrace-blame"
    assert payload.fallback_reason is not None and payload.fallback_reason.startswith("over budget: budget_exceeded")
    assert fake_anthropic.requests == []


async def test_the_step_budget_forces_the_findings_and_the_report_still_comes(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    steps = [fa.tool_use("search_code", {"pattern": f"COUPONS{'.*' * i}"}) for i in range(8)]
    fake_anthropic.script(*prepared(), *steps, findings(shop.bug), report(shop.bug))
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic))
    assert payload.report is not None and (payload.report.steps, payload.report.tool_calls) == (8, 8)
    forced = fake_anthropic.requests[-2]
    assert forced.body["tool_choice"] == {"type": "tool", "name": "emit_findings"}
    assert "step budget is used up" in forced.text
    assert "step budget ran out" in fake_anthropic.requests[-1].text  # the report knows it


async def test_without_a_model_the_deterministic_diagnosis_says_why(shop: Shop, tmp_path: Path) -> None:
    cfg = RepoConfig(name="shop", path=str(shop.repo.path), services=["shop-api"])
    diagnosis = Diagnosis(
        repos=MemoryRepos({"shop": cfg}), checkouts=GitCheckouts(Workspaces(tmp_path / "ws")), audit=MemoryAudit()
    )
    payload = await shop.diagnose(diagnosis)
    assert payload.strategy == "stacktrace-blame" and payload.report is None
    assert payload.fallback_reason is not None and payload.fallback_reason.startswith("no model configured")


async def test_calls_past_the_per_step_limit_are_not_run_and_the_model_is_told(
    shop: Shop, fake_anthropic: FakeAnthropic
) -> None:
    calls: list[tuple[str, dict[str, Any], str | None]] = [
        ("recent_commits", {"paths": ["shop/pricing.py"]}, "c1"),
        ("git_blame", {"path": "shop/pricing.py", "line": 6}, "c2"),
        ("search_code", {"pattern": "COUPONS\\["}, "c3"),
        ("git_log", {}, "c4"),
        ("read_file", {"path": "shop/pricing.py"}, "c5"),
    ]
    fake_anthropic.script(*prepared(), fa.tool_uses(calls), findings(shop.bug), report(shop.bug))
    payload = await shop.diagnose(shop.diagnosis(fake_anthropic))  # agents.yaml: max_parallel_tools 4

    assert payload.report is not None and payload.report.tool_calls == 4
    after = fake_anthropic.requests[4]
    results = {
        b["tool_use_id"]: json.dumps(b)
        for m in after.body["messages"]
        for b in m["content"]
        if b.get("type") == "tool_result"
    }
    assert "pricing: look coupons up directly" in results["c1"] and "shop/pricing.py" in results["c1"]
    assert "last changed by" in results["c2"] and "shop/pricing.py:6" in results["c3"]
    assert "Not executed: at most 4 tool calls per step" in results["c5"] and '"is_error": true' in results["c5"]

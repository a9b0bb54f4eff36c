"""Replay's pure parts: the chain feeds each stage the events it consumes and stops where nothing comes out; the
outcome of an incident is summarized the same way on both sides and compared field by field, patches as text."""

from __future__ import annotations

import uuid
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from pagerpatch.replay import ReplayInput, StageOutcome, load_steps, repo_for_service, run_chain
from pagerpatch.replay.config import config_file, governance_dir
from pagerpatch.replay.outcome import compare, compare_patches, patch_stats, render, summarize, to_json
from pagerpatch.replay.recorded import rebuilt_alert
from pagerpatch.settings import RepoConfig, ServiceEntry, Settings
from schemas.events import (
    AlertReceived,
    AlertReceivedPayload,
    AlertSuppressed,
    AlertSuppressedPayload,
    ApprovalRequested,
    ApprovalRequestedPayload,
    DiagnosisReady,
    DiagnosisReadyPayload,
    FixApproved,
    FixApprovedPayload,
    FixValidated,
    IncidentOpened,
    IncidentOpenedPayload,
    RiskAssessment,
    RiskLevel,
    Severity,
    SuspectCommit,
)
from tests.support.review import fix_payload

INCIDENT = uuid.uuid4()
PATCH_A = "diff --git a/shop/pricing.py b/shop/pricing.py\n--- a/shop/pricing.py\n+++ b/shop/pricing.py\n" \
          "@@ -1 +1 @@\n-    return COUPONS[code]\n+    return COUPONS.get(code)\n"  # fmt: skip
PATCH_B = PATCH_A.replace("COUPONS.get(code)", "COUPONS.get(code, NONE)")


def alert(title: str = "checkout 500") -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title=title), source="t")


def opened(given: AlertReceived, severity: Severity = Severity.P2, *reasons: str) -> IncidentOpened:
    payload = IncidentOpenedPayload(fingerprint="fp", title=given.payload.title, service="checkout",
                                    severity=severity, repo="shop", reasons=list(reasons))  # fmt: skip
    return given.derive(IncidentOpened, payload, stage="triage", incident_id=INCIDENT)


def pipeline(severity: Severity, patch: str, risk: RiskLevel, wait: bool) -> list[object]:
    """What the stages publish for one incident: opened, diagnosed, fixed, reviewed."""
    o = opened(alert(), severity, f"severity {severity.value}")
    suspect = SuspectCommit(sha="b" * 40, subject="pricing: simplify coupon lookup")
    diagnosis = DiagnosisReadyPayload(repo="shop", base_commit="a" * 40, root_cause="KeyError", confidence=0.8,
                                      suspect_commit=suspect)  # fmt: skip
    ready = o.derive(DiagnosisReady, diagnosis, stage="diagnosis")
    fix = fix_payload(patch=patch, strategy="revert-and-test", proof="proved")
    validated = ready.derive(FixValidated, fix, stage="fixgen")
    assessed = RiskAssessment(level=risk, score=50 if wait else 0, reasons=[f"{risk.value} by the rules"])
    if wait:
        asked = ApprovalRequestedPayload(risk=assessed, repo="shop", summary="revert")
        return [o, ready, validated, validated.derive(ApprovalRequested, asked, stage="review")]
    approved = FixApprovedPayload(risk=assessed, approved_by="policy", fix=fix)
    return [o, ready, validated, validated.derive(FixApproved, approved, stage="review")]


# ------------------------------------------------------------------ outcome and diff


def test_an_incident_is_summarized_from_what_each_stage_published() -> None:
    s = summarize(pipeline(Severity.P1, PATCH_A, RiskLevel.LOW, wait=False), 0.25)  # type: ignore[arg-type]
    assert (s.classification, s.severity, s.reasons) == ("real", "P1", ("severity P1",))
    assert s.suspect == f"{'b' * 12} pricing: simplify coupon lookup"
    assert (s.strategy, s.fix, s.patch) == ("revert-and-test", "validated (proved)", PATCH_A)
    assert (s.risk, s.risk_reasons, s.decision) == ("LOW (score 0)", ("LOW by the rules",), "approved by policy")
    assert s.cost_usd == 0.25


def test_a_suppressed_alert_is_its_class_and_nothing_downstream() -> None:
    given = alert()
    payload = AlertSuppressedPayload(fingerprint="fp", reason="noise", reasons=["noise: matches 'flaky'"])
    quiet = given.derive(AlertSuppressed, payload, stage="triage")
    s = summarize([quiet])
    assert (s.classification, s.severity, s.reasons) == ("noise", None, ("noise: matches 'flaky'",))
    assert s.suspect is None and s.risk is None and s.decision is None


def test_the_comparison_names_the_fields_that_changed_and_prints_both_sides() -> None:
    recorded = summarize(pipeline(Severity.P2, PATCH_A, RiskLevel.LOW, wait=False))  # type: ignore[arg-type]
    replayed = summarize(pipeline(Severity.P3, PATCH_A, RiskLevel.HIGH, wait=True), 0.5)  # type: ignore[arg-type]
    c = compare(recorded, replayed, ["a note"])
    assert c.changed == ["severity", "reasons", "risk", "risk_reasons", "decision", "cost"]
    text = "\n".join(render(c))
    assert "~ severity     P2 -> P3" in text
    assert "~ risk         LOW (score 0) -> HIGH (score 50)" in text
    assert "~ decision     approved by policy -> waits for approval" in text
    assert "~ reasons\n    recorded: severity P2\n    replayed: severity P3" in text
    assert "  suspect      bbbbbbbbbbbb pricing: simplify coupon lookup" in text
    assert "~ cost         $0.0000 -> $0.5000" in text
    doc = to_json(c)
    assert doc["fields"]["severity"] == {"recorded": "P2", "replayed": "P3", "changed": True}
    assert doc["fields"]["suspect"]["changed"] is False and doc["notes"] == ["a note"]


def test_the_same_outcome_is_no_change() -> None:
    events = pipeline(Severity.P2, PATCH_A, RiskLevel.LOW, wait=False)
    c = compare(summarize(events), summarize(events))  # type: ignore[arg-type]
    assert c.changed == [] and not c.patch.changed
    assert render(c)[-1] == "no change: the replay decided as recorded"


def test_patches_are_compared_as_text_with_their_sizes_and_a_diff_of_the_diffs() -> None:
    assert patch_stats(PATCH_A).files == ("shop/pricing.py",)
    assert (patch_stats(PATCH_A).added, patch_stats(PATCH_A).removed) == (1, 1)
    p = compare_patches(PATCH_A, PATCH_B)
    assert p.changed and p.recorded == p.replayed  # same size, other text
    assert "-+    return COUPONS.get(code)\n++    return COUPONS.get(code, NONE)" in p.diff
    recorded = summarize(pipeline(Severity.P2, PATCH_A, RiskLevel.LOW, wait=False))  # type: ignore[arg-type]
    replayed = summarize(pipeline(Severity.P2, PATCH_B, RiskLevel.LOW, wait=False))  # type: ignore[arg-type]
    c = compare(recorded, replayed)
    assert c.changed == ["patch"]
    assert c.changes[6].replayed == "1 file(s), +1 -1 (changed)"
    assert "diff of the patches (recorded -> replayed):" in render(c)
    gone = compare_patches(PATCH_A, None)
    assert gone.changed and gone.replayed is None and gone.diff.count("\n-") >= 5


# ------------------------------------------------------------------ the chain


class Recorder:
    """Replay steps that record what they were given and answer with scripted outputs."""

    def __init__(self, answers: dict[str, list[object]]) -> None:
        self.answers = answers
        self.given: dict[str, list[object]] = {}

    def step(self, stage: str):  # type: ignore[no-untyped-def]
        async def run(inputs: ReplayInput, settings: Settings) -> StageOutcome:
            assert inputs.workdir.is_dir() and inputs.workdir.name == stage
            self.given[stage] = list(inputs.events)
            return StageOutcome(stage, tuple(self.answers.get(stage, [])), cost_usd=0.1)  # type: ignore[arg-type]

        return run


async def test_the_chain_feeds_each_stage_what_it_consumes(tmp_path: Path) -> None:
    first, second = alert("one"), alert("two")
    o = opened(first)
    ready = o.derive(DiagnosisReady, DiagnosisReadyPayload(repo="shop", base_commit="a" * 40, root_cause="x",
                                                          confidence=0.5), stage="diagnosis")  # fmt: skip
    other = opened(second)
    rec = Recorder({"triage": [o, other], "diagnosis": [ready]})
    steps = {s: rec.step(s) for s in ("triage", "diagnosis", "fixgen", "review")}
    out = await run_chain(steps, [first, second], Settings(), incident_id=INCIDENT, repos=[], workdir=tmp_path)
    assert rec.given["triage"] == [first, second]  # every recorded alert
    assert rec.given["diagnosis"] == [o]  # the first incident.opened only
    assert rec.given["fixgen"] == [ready]
    assert "review" not in rec.given  # fixgen published nothing review consumes
    assert [(s.stage, s.ran) for s in out] == [("triage", True), ("diagnosis", True), ("fixgen", True),
                                               ("review", False)]  # fmt: skip
    assert out[3].notes == ("not reached: fixgen produced nothing review consumes (approval.decided, fix.validated)",)


async def test_a_stage_without_a_step_stops_the_chain_and_says_so(tmp_path: Path) -> None:
    rec = Recorder({"triage": [opened(alert())]})
    out = await run_chain({"triage": rec.step("triage")}, [alert()], Settings(), incident_id=INCIDENT, repos=[],
                          workdir=tmp_path)  # fmt: skip
    assert [s.ran for s in out] == [True, False, False, False]
    assert "no replay step for diagnosis is installed" in out[1].notes[0]
    assert out[2].notes == out[1].notes


async def test_a_failing_stage_is_reported_and_stops_the_chain(tmp_path: Path) -> None:
    async def broken(inputs: ReplayInput, settings: Settings) -> StageOutcome:
        raise LookupError("repository 'shop' is not registered")

    rec = Recorder({"triage": [opened(alert())]})
    steps = {"triage": rec.step("triage"), "diagnosis": broken, "fixgen": rec.step("fixgen")}
    out = await run_chain(steps, [alert()], Settings(), incident_id=INCIDENT, repos=[], workdir=tmp_path)
    assert out[1].notes == ("failed: LookupError: repository 'shop' is not registered",) and out[1].outputs == ()
    assert "fixgen" not in rec.given and out[2].notes == ("not reached: diagnosis failed",) and not out[2].ran


async def test_no_alerts_reaches_no_stage(tmp_path: Path) -> None:
    out = await run_chain({}, [], Settings(), incident_id=INCIDENT, repos=[], workdir=tmp_path)
    assert [s.ran for s in out] == [False] * 4
    assert out[0].notes == ("not reached: the recording produced nothing triage consumes (alert.received)",)


def test_steps_come_from_entry_points_and_a_broken_one_is_reported() -> None:
    problems: list[str] = []
    good = EntryPoint("triage", "services.triage.replay:replay", "pagerpatch.replay")
    broken = EntryPoint("fixgen", "no_such_module_here:replay", "pagerpatch.replay")
    steps = load_steps(problems.append, lambda: [good, broken])
    assert list(steps) == ["triage"] and callable(steps["triage"])
    assert problems and "'fixgen'" in problems[0] and "ModuleNotFoundError" in problems[0]


def test_the_installed_steps_cover_every_stage() -> None:
    assert set(load_steps(lambda p: pytest.fail(p))) == {"triage", "diagnosis", "fixgen", "review"}


# ------------------------------------------------------------------ inputs and configuration


def test_a_repository_is_found_for_a_service_as_the_registry_finds_it() -> None:
    shop = RepoConfig(name="shop", path="/x", services=["checkout"])
    other = RepoConfig(name="other", path="/y")
    assert repo_for_service([shop, other], Settings(), "checkout") == "shop"
    catalog = Settings(service_catalog={"checkout": ServiceEntry(repo="other")})
    assert repo_for_service([shop, other], catalog, "checkout") == "other"
    assert repo_for_service([shop], catalog, "checkout") is None  # named in the catalog, not registered
    assert repo_for_service([shop], Settings(), "cart") is None


def test_an_alert_gone_from_the_stream_is_rebuilt_from_its_incident_opened() -> None:
    given = alert()
    o = opened(given)
    rebuilt = rebuilt_alert(given.event_id, o)
    assert rebuilt.event_id == given.event_id and rebuilt.occurred_at == o.occurred_at
    assert (rebuilt.payload.service, rebuilt.payload.title, rebuilt.payload.source) == ("checkout", "checkout 500",
                                                                                        "replay")  # fmt: skip


def test_the_governance_folder_is_copied_with_the_given_files_in_place(tmp_path: Path) -> None:
    base = tmp_path / "config"
    (base / "prompts").mkdir(parents=True)
    (base / "agents.yaml").write_text("agents: {}\n")
    (base / "policies.yaml").write_text("max_files: 10\n")
    (base / "prompts" / "review.md").write_text("old prompt")
    mine = tmp_path / "mine"
    (mine / "prompts").mkdir(parents=True)
    (mine / "agents.yaml").write_text("agents: {x: 1}\n")
    (mine / "prompts" / "review.md").write_text("new prompt")
    out = governance_dir(base, tmp_path / "replay", agents=mine / "agents.yaml")
    assert (out / "agents.yaml").read_text() == "agents: {x: 1}\n"
    assert (out / "policies.yaml").read_text() == "max_files: 10\n"  # not given: kept
    assert (out / "prompts" / "review.md").read_text() == "new prompt"
    assert (base / "agents.yaml").read_text() == "agents: {}\n"  # the original is untouched


def test_the_config_file_is_in_force_only_inside_the_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGERPATCH_CONFIG_FILE", "/live.yaml")
    changed = tmp_path / "changed.yaml"
    changed.write_text("policy: {max_files: 3}\n")
    with config_file(changed):
        assert Settings().policy.max_files == 3
    import os

    assert os.environ["PAGERPATCH_CONFIG_FILE"] == "/live.yaml"

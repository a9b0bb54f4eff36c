"""The fix agent end to end below the bus: the real Anthropic SDK against the fake Messages API (scripted per
test), real git repositories built here, the real bubblewrap sandbox running the repository's own tests.

The repository: `apply_coupon` raises KeyError for an unknown coupon since "Simplify coupon lookup". Its tests pass
both ways, so reverting that commit is unproven and the chain goes on to the model's patch.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pagerpatch.git.worktrees import Workspaces
from pagerpatch.sandbox import BubblewrapSandbox, Environments
from pagerpatch.settings import RepoConfig
from schemas.events import DiagnosisReadyPayload, Evidence, FixFailedPayload, FixValidatedPayload
from services.fixgen.adapters import SandboxTestRunner, WorktreeReverter, make_fix_agent
from services.fixgen.domain.policy import PatchPolicy
from services.fixgen.memory import MemoryRepos, RecordingBreakers
from services.fixgen.modelpatch import ModelPatcher
from services.fixgen.ports import FixRequest
from services.fixgen.usecase import FixGenerator, FixOutcome
from tests.support.fake_anthropic import FakeAnthropic, Reply, error, overloaded, tool_use
from tests.support.git import Repo
from tests.support.llm_env import llm_settings

_bwrap = BubblewrapSandbox()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
    pytest.mark.skipif(not _bwrap.available(), reason=_bwrap.unavailable_reason() or ""),
]

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config"
INCIDENT = uuid.UUID("3c9d4e2f-1a7b-4c8d-9e0f-5a6b7c8d9e0f")
PRICING = "shop/pricing.py"
GOOD = '''\
"""Prices and coupons."""

COUPONS = {"SAVE10": 10, "HALF": 50}


def apply_coupon(total, code):
    """The total after the coupon `code`; an unknown code changes nothing."""
    percent = COUPONS.get(code, 0)
    return round(total * (100 - percent) / 100, 2)
'''
BAD = GOOD.replace("COUPONS.get(code, 0)", "COUPONS[code]")
TESTS = 'from shop.pricing import apply_coupon\n\n\ndef test_save10():\n    assert apply_coupon(100, "SAVE10") == 90\n'
REGRESSION = "tests/test_unknown_coupon.py"
REPRODUCING = (
    'from shop.pricing import apply_coupon\n\n\ndef test_an_unknown_coupon_changes_nothing():\n'
    '    assert apply_coupon(100, "BOGUS") == 100\n'
)  # fmt: skip
ALREADY_PASSING = REPRODUCING.replace('"BOGUS") == 100', '"HALF") == 50')
BROKEN_FIX = {"path": PRICING, "old": "COUPONS[code]", "new": "COUPONS.get(code)"}  # None: TypeError with the fix
FIX = {"path": PRICING, "old": "COUPONS[code]", "new": "COUPONS.get(code, 0)"}
SUSPECT = "Simplify coupon lookup"


def shop(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    repo = Repo.init(tmp_path / "shop")
    shas = {"Add coupons": repo.commit({"shop/__init__.py": "", PRICING: GOOD, "tests/test_pricing.py": TESTS},
                                       "Add coupons")}  # fmt: skip
    shas[SUSPECT] = repo.commit({PRICING: BAD}, SUSPECT)
    return repo, shas


def diagnosis(repo: Repo, shas: dict[str, str], *, suspect: bool = True) -> DiagnosisReadyPayload:
    commit = {"sha": shas[SUSPECT], "subject": SUSPECT} if suspect else None
    return DiagnosisReadyPayload.model_validate({
        "repo": "shop", "base_commit": repo.git("rev-parse", "HEAD").strip(), "title": "KeyError: 'BOGUS'",
        "root_cause": "apply_coupon looks unknown coupon codes up without a default", "suspect_commit": commit,
        "evidence": [Evidence(file=PRICING, line=8, function="apply_coupon")], "confidence": 0.7,
        "exception_type": "KeyError",
    })  # fmt: skip


def proposal(*edits: dict[str, str], test: str | None = REPRODUCING, **more: Any) -> Reply:
    answer: dict[str, Any] = {"summary": "Unknown coupon codes change nothing", "edits": list(edits), **more}
    if test is not None:
        answer["regression_test"] = {"path": REGRESSION, "content": test}
    return tool_use("emit_fix_proposal", answer)


class Runs(SandboxTestRunner):
    """The real sandbox runner, noting each command and the worktree it ran in."""

    commands: list[tuple[str, str]]

    async def run_tests(self, env: Any, command: str, tree: Path, *, timeout_s: float) -> Any:
        self.commands.append((tree.name, command))
        return await super().run_tests(env, command, tree, timeout_s=timeout_s)


async def fix(
    tmp_path: Path, repo: Repo, d: DiagnosisReadyPayload, fake: FakeAnthropic, *, attempts: int = 3,
    policy: PatchPolicy | None = None, test_command: str = "python -m pytest -q", **llm: Any,
) -> tuple[FixOutcome, Runs]:  # fmt: skip
    config = RepoConfig(name="shop", path=str(repo.path), test_command=test_command)
    runner = Runs(_bwrap, Environments(tmp_path / "home" / "envs", _bwrap))
    runner.commands = []
    worktrees = WorktreeReverter(Workspaces(tmp_path / "home" / "workspaces"))
    agent = make_fix_agent(llm_settings(fake.url, SHIPPED_CONFIG, **llm), None)
    assert agent is not None
    generator = FixGenerator(
        repos=MemoryRepos.of(config), reverter=worktrees, tests=runner, sandbox_problem=None, timeout_s=120.0,
        model=ModelPatcher(agent, worktrees, policy or PatchPolicy(), attempts),
    )  # fmt: skip
    outcome = await generator.generate(d, config, INCIDENT, RecordingBreakers())
    assert not list((tmp_path / "home" / "workspaces" / "worktrees").glob("*/*"))  # every worktree removed
    return outcome, runner


def prompts(fake: FakeAnthropic) -> list[str]:
    """The first user message of each request (one per agent turn)."""
    return [json.dumps(r.body["messages"][0]["content"]) for r in fake.requests]


async def test_a_patch_that_fails_its_regression_test_is_retried_and_the_second_attempt_is_proved(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    repo, shas = shop(tmp_path)
    fake_anthropic.script(
        tool_use("read_file", {"path": PRICING}),  # attempt 1 reads the file, then answers
        proposal(BROKEN_FIX),
        proposal(FIX),  # attempt 2
    )
    outcome, runs = await fix(tmp_path, repo, diagnosis(repo, shas), fake_anthropic)

    assert isinstance(outcome, FixValidatedPayload), outcome
    assert (outcome.strategy, outcome.proof, outcome.attempts, outcome.reproduced) == ("model-patch", "proved", 2, True)
    assert outcome.reproduction_note.startswith(f"reproduced: the regression test {REGRESSION} fails at the base")
    assert "KeyError" in outcome.reproduction_note
    assert [(a.strategy, a.outcome) for a in outcome.attempt_log] == [
        ("revert-and-test", "unproven"), ("model-patch", "failed"), ("model-patch", "proved")
    ]  # fmt: skip
    assert f"the regression test {REGRESSION} still fails with the fix" in outcome.attempt_log[1].reason
    # the fix and its regression test are the patch (what the PR carries)
    assert set(outcome.files_changed) == {PRICING, REGRESSION}
    assert (
        "+    percent = COUPONS.get(code, 0)" in outcome.patch and "+++ b/tests/test_unknown_coupon.py" in outcome.patch
    )
    assert outcome.regression_test == REPRODUCING and outcome.tests.passed and outcome.tests.sandbox == "bubblewrap"
    # the retry's prompt: the previous attempt's summary, reason and failing output, not its conversation
    first, _, second = prompts(fake_anthropic)
    assert "<previous_attempt" not in first and '<previous_attempt number=\\"2\\">' in second
    assert "TypeError" in second and "still fails with the fix" in second
    assert len(fake_anthropic.requests[2].body["messages"]) == 1  # a fresh conversation: no earlier turns
    assert "Prices and coupons" not in second  # attempt 1's read_file output stayed in attempt 1
    # reproduce first: the regression test alone at the base, then with the fix, then the whole suite
    assert [c for tree, c in runs.commands if tree == "fix-agent-2"] == [
        f"python -m pytest -q -rfE --tb=short -- {REGRESSION}"] * 2 + ["python -m pytest -q"]  # fmt: skip


async def test_a_patch_that_does_not_apply_fails_with_gits_reason_and_the_last_attempt_gives_fix_failed(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    repo, shas = shop(tmp_path)
    stale = (f"--- a/{PRICING}\n+++ b/{PRICING}\n@@ -7,2 +7,2 @@\n     \"\"\"A docstring that is not there.\"\"\"\n"
             "-    percent = COUPONS.get(code)\n+    percent = COUPONS.get(code, 0)\n")  # fmt: skip
    fake_anthropic.script(proposal(diff=stale))
    outcome, runs = await fix(tmp_path, repo, diagnosis(repo, shas, suspect=False), fake_anthropic, attempts=1)
    assert isinstance(outcome, FixFailedPayload), outcome
    [_, attempt] = outcome.attempt_log
    assert attempt.outcome == "failed" and "does not apply (git apply --check)" in attempt.reason
    assert f"error: patch failed: {PRICING}:7" in attempt.reason  # git's own words, for the next attempt
    assert "names no suspect commit" in outcome.reason and "no model patch held after 1 attempt(s)" in outcome.reason
    assert any("does not apply" in line for line in outcome.tried)
    assert [tree for tree, _ in runs.commands] == ["fix-base"]  # only the baseline ran: nothing was applied


async def test_a_patch_touching_a_protected_path_is_refused_before_any_test_runs(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    repo, shas = shop(tmp_path)
    migration = {"path": "migrations/0002_coupons.sql", "old": "", "new": "ALTER TABLE coupons ADD percent int;\n"}
    fake_anthropic.script(proposal(FIX, migration))
    policy = PatchPolicy(protected_paths=("migrations/**",))
    outcome, runs = await fix(tmp_path, repo, diagnosis(repo, shas, suspect=False), fake_anthropic, attempts=1,
                              policy=policy)  # fmt: skip
    assert isinstance(outcome, FixFailedPayload)
    attempt = outcome.attempt_log[-1]
    assert attempt.outcome == "refused" and "protected paths (migrations/0002_coupons.sql)" in attempt.reason
    assert [tree for tree, _ in runs.commands] == ["fix-base"]


async def test_a_workflow_file_and_an_outbound_call_are_not_refused_here_review_gates_them(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    repo, shas = shop(tmp_path)
    workflow = {
        "path": ".github/workflows/coupons.yml",
        "old": "",
        "new": "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps: [{run: pytest}]\n",
    }
    beacon = {"path": PRICING, "old": '"""Prices and coupons."""\n',
              "new": '"""Prices and coupons."""\n\nimport urllib.request\n\n\ndef report(code):\n'
                     '    urllib.request.urlopen("https://coupons.example.com/miss?code=" + code)\n'}  # fmt: skip
    fake_anthropic.script(proposal(FIX, beacon, workflow))
    outcome, _ = await fix(tmp_path, repo, diagnosis(repo, shas, suspect=False), fake_anthropic, attempts=1)
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.strategy == "model-patch" and outcome.proof == "proved"
    assert ".github/workflows/coupons.yml" in outcome.files_changed
    assert "+    urllib.request.urlopen(" in outcome.patch


async def test_a_regression_test_that_already_passes_at_the_base_is_flagged_not_a_reproduction(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    repo, shas = shop(tmp_path)
    fake_anthropic.script(proposal(FIX, test=ALREADY_PASSING))
    outcome, _ = await fix(tmp_path, repo, diagnosis(repo, shas, suspect=False), fake_anthropic, attempts=1)
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.reproduced is False and outcome.proof == "unproven"
    assert outcome.reproduction_note.startswith("NOT A REPRODUCTION: the regression test")
    assert "already passes at the base commit" in outcome.reproduction_note
    assert outcome.proof_detail.startswith("UNPROVEN:") and "NOT A REPRODUCTION" in outcome.commit_message


async def test_the_model_unavailable_keeps_the_unproven_revert(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    repo, shas = shop(tmp_path)
    fake_anthropic.always(overloaded())
    outcome, _ = await fix(tmp_path, repo, diagnosis(repo, shas), fake_anthropic, max_retries=1)
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert outcome.strategy == "revert-and-test" and outcome.proof == "unproven"
    assert [(a.strategy, a.outcome) for a in outcome.attempt_log] == [
        ("revert-and-test", "unproven"), ("model-patch", "unavailable")
    ]  # fmt: skip
    assert "unavailable" in outcome.attempt_log[-1].reason


async def test_the_model_refusing_the_request_without_a_suspect_is_fix_failed_with_the_reason(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    repo, shas = shop(tmp_path)
    fake_anthropic.always(error(400, "invalid_request_error", "prompt is too long"))
    outcome, _ = await fix(tmp_path, repo, diagnosis(repo, shas, suspect=False), fake_anthropic)
    assert isinstance(outcome, FixFailedPayload), outcome
    assert "the fix agent is unavailable: the model call failed" in outcome.reason
    assert "prompt is too long" in outcome.reason
    assert len(fake_anthropic.requests) == 1  # an unavailable agent is not asked again


async def test_only_the_fix_and_its_regression_test_are_committed_not_what_the_tests_left_in_the_tree(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    repo, shas = shop(tmp_path)
    # The repository's suite writes a file into its working directory, as many do (logs, reports, caches).
    leaves_a_log = "from pathlib import Path\n\n\ndef test_writes_a_log():\n    Path('run.log').write_text('ran')\n"
    repo.commit({"tests/test_log.py": leaves_a_log}, "A test that leaves a log")
    fake_anthropic.script(proposal(FIX))
    outcome, _ = await fix(tmp_path, repo, diagnosis(repo, shas, suspect=False), fake_anthropic, attempts=1)
    assert isinstance(outcome, FixValidatedPayload), outcome
    assert set(outcome.files_changed) == {PRICING, REGRESSION}  # not run.log
    assert "run.log" not in outcome.patch


async def test_a_proved_revert_never_calls_the_model(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    repo, shas = shop(tmp_path)
    repo.commit({REGRESSION: REPRODUCING}, "Test unknown coupons")  # fails at HEAD, passes with the revert
    outcome, _ = await fix(tmp_path, repo, diagnosis(repo, shas), fake_anthropic)
    assert isinstance(outcome, FixValidatedPayload) and outcome.proof == "proved"
    assert outcome.strategy == "revert-and-test" and fake_anthropic.requests == []


async def test_a_regression_test_path_naming_a_folder_is_the_models_mistake_not_a_crash(tmp_path: Path) -> None:
    """A ValueError is a refused attempt (the next one is told why); an OSError would fail the whole message."""
    worktrees = WorktreeReverter(Workspaces(tmp_path / "home" / "workspaces"))
    (tmp_path / "tree" / "tests").mkdir(parents=True)
    with pytest.raises(ValueError, match="the regression test cannot be written at 'tests'"):
        await worktrees.write_file(tmp_path / "tree", "tests", "def test_x():\n    pass\n")
    with pytest.raises(ValueError, match="leads outside the worktree"):
        await worktrees.write_file(tmp_path / "tree", ".git/hooks/pre-commit", "exit 0\n")


async def test_the_fix_agents_calls_are_costed_under_the_incident_and_its_team(
    tmp_path: Path, fake_anthropic: FakeAnthropic, pool: asyncpg.Pool
) -> None:
    """The team's daily budget binds the fix agent too: its calls carry the team (the ledger row says so)."""
    fake_anthropic.script(proposal(FIX))
    agent = make_fix_agent(llm_settings(fake_anthropic.url, SHIPPED_CONFIG), pool)
    assert agent is not None
    request = FixRequest("fix it", tmp_path, "HEAD", str(INCIDENT), team="payments")
    answer = await agent.propose(request)
    assert answer.edits[0].new == FIX["new"]
    row = await pool.fetchrow("SELECT agent, step, team, incident_id FROM llm_calls")
    assert (row["agent"], row["step"], row["team"], str(row["incident_id"])) == ("fixgen", "patch", "payments",
                                                                                   str(INCIDENT))  # fmt: skip

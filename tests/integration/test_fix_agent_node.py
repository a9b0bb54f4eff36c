"""The fix agent on a JavaScript (node) repository, end to end below the bus: the real SDK against the fake
Messages API, a real git repository, the real bubblewrap sandbox running `node --test`. Reproduce first works the
same way as for Python: the regression test alone at the base (its TAP output says why it failed), then with the
fix, then the whole suite.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.events import DiagnosisReadyPayload, Evidence, FixValidatedPayload
from tests.integration.test_fix_agent import fix
from tests.support.fake_anthropic import FakeAnthropic, Reply, tool_use
from tests.support.git import Repo

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

CART = "lib/cart.js"
GOOD = "exports.count = (cart) => (cart.items || []).length;\n"
BAD = "exports.count = (cart) => cart.items.length;\n"
SUITE = (
    "const test = require('node:test');\nconst assert = require('node:assert');\n"
    "const { count } = require('../lib/cart');\n\n"
    "test('counts items', () => {\n  assert.strictEqual(count({ items: [1, 2] }), 2);\n});\n"
)
REGRESSION = "test/empty-cart.test.js"
REPRODUCING = SUITE.replace("counts items", "an empty cart counts none").replace("{ items: [1, 2] }), 2", "{}), 0")
ALREADY_PASSING = SUITE.replace("counts items", "no items").replace("{ items: [1, 2] }), 2", "{ items: [] }), 0")
FIX = {"path": CART, "old": "cart.items.length", "new": "(cart.items || []).length"}


def cart(tmp_path: Path) -> Repo:
    repo = Repo.init(tmp_path / "shop")
    repo.commit({"package.json": '{"name": "shop", "private": true}\n', CART: GOOD, "test/cart.test.js": SUITE},
                "Add the cart")  # fmt: skip
    repo.commit({CART: BAD}, "Simplify count")
    return repo


def diagnosis(repo: Repo) -> DiagnosisReadyPayload:
    return DiagnosisReadyPayload.model_validate({
        "repo": "shop", "base_commit": repo.git("rev-parse", "HEAD").strip(), "exception_type": "TypeError",
        "title": "TypeError: Cannot read properties of undefined (reading 'length')", "confidence": 0.6,
        "root_cause": "count reads items of a cart that has none", "suspect_commit": None,
        "evidence": [Evidence(file=CART, line=1, function="exports.count")],
    })  # fmt: skip


def proposal(test: str) -> Reply:
    return tool_use("emit_fix_proposal", {"summary": "An empty cart counts no items", "edits": [FIX],
                                          "regression_test": {"path": REGRESSION, "content": test}})  # fmt: skip


@pytest.mark.parametrize(
    ("test", "reproduced", "note"),
    [
        (REPRODUCING, True, "fails at the base commit with TypeError (TypeError: Cannot read properties of undefined"),
        (ALREADY_PASSING, False, "NOT A REPRODUCTION: the regression test test/empty-cart.test.js already passes"),
    ],
    ids=["reproduces", "already-passes"],
)
async def test_a_node_regression_test_is_run_alone_at_the_base_and_its_tap_output_says_why_it_failed(
    tmp_path: Path, fake_anthropic: FakeAnthropic, test: str, reproduced: bool, note: str
) -> None:
    repo = cart(tmp_path)
    fake_anthropic.script(proposal(test))
    outcome, runs = await fix(tmp_path, repo, diagnosis(repo), fake_anthropic, attempts=1, test_command="node --test")
    assert isinstance(outcome, FixValidatedPayload), outcome
    proof = "proved" if reproduced else "unproven"  # the suite passes both ways: only a reproduction proves it
    assert (outcome.strategy, outcome.reproduced, outcome.proof) == ("model-patch", reproduced, proof)
    assert note in outcome.reproduction_note and "TAP version" not in outcome.reproduction_note
    assert set(outcome.files_changed) == {CART, REGRESSION}
    assert [c for tree, c in runs.commands if tree == "fix-agent-1"] == [f"node --test {REGRESSION}"] * 2 + [
        "node --test"
    ]

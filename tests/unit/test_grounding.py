"""The grounding guard on a small real git repository: files, lines, quotes, symbols and commits a report names are
checked at the base commit; what fails is dropped from the evidence and replaced in the text."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from schemas.investigation import Claim
from services.diagnosis.adapters import GitHistory
from services.diagnosis.domain import grounding
from services.diagnosis.domain.grounding import UNVERIFIED, check_report, quote_matches, scrub
from services.diagnosis.domain.investigation import ReportDraft
from services.diagnosis.investigation import HistorySources
from tests.support.git import Repo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SAFE = """\
COUPONS = {"SAVE10": 0.1}


def apply_coupon(total, code):
    rate = COUPONS.get(code, 0.0)
    return round(total * (1 - rate), 2)
"""
BROKEN = SAFE.replace("COUPONS.get(code, 0.0)", "COUPONS[code]")
CART = "class Cart:\n    def total(self):\n        return 0\n"
JS = "export function formatPrice(value) {\n  return value.toFixed(2);\n}\n"


class Shop:
    def __init__(self, tmp_path: Path) -> None:
        self.repo = Repo.init(tmp_path / "shop")
        self.init = self.repo.commit(
            {"shop/__init__.py": "", "shop/pricing.py": SAFE, "shop/cart.py": CART, "web/price.js": JS}, "initial"
        )
        self.bug = self.repo.commit({"shop/pricing.py": BROKEN}, "pricing: look coupons up directly", who="Eve")
        self.repo.git("checkout", "-q", "-b", "elsewhere")
        self.other = self.repo.commit({"README.md": "x\n"}, "a commit on another branch")
        self.repo.git("checkout", "-q", "main")
        self.view = HistorySources(GitHistory(self.repo.path), self.bug)


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path)


def draft(**fields: Any) -> ReportDraft:
    values: dict[str, Any] = {"summary": "Checkout fails.", "root_cause": "KeyError.", "confidence": 0.8}
    return ReportDraft(**{**values, **fields})


def test_true_claims_pass_and_are_counted(shop: Shop) -> None:
    report = draft(
        root_cause=f"`apply_coupon()` in shop/pricing.py:5 indexes COUPONS directly since {shop.bug[:7]}.",
        evidence=[
            Claim(file="shop/pricing.py", line=5, symbol="apply_coupon", commit=shop.bug, quote="rate = COUPONS[code]"),
            Claim(file="shop/cart.py", line=2, symbol="Cart.total", quote="def total(self):"),
            Claim(file="web/price.js", symbol="formatPrice", quote="return value.toFixed(2);"),
        ],
        suspect_commit=shop.bug[:10],
        next_steps=["Use `COUPONS.get()` and `json.dumps()` as before; see len() of the result."],
    )
    checked = check_report(report, shop.view)
    assert checked.failures == ()
    # 3 claims (5 + 4 + 3 checks), the suspect, and in the text: a path:line, a call, a sha
    assert checked.checked == 12 + 1 + 3
    assert grounding.stands(report, checked) and grounding.lowered_confidence(0.8, checked) == 0.8


def test_a_fabricated_function_a_wrong_quote_and_a_foreign_commit_are_each_rejected(shop: Shop) -> None:
    report = draft(
        root_cause="`apply_discount_v2()` in shop/pricing.py divides by zero; "
        "see shop/payments.py:40 and 9f8e7d6c5b4a.",
        evidence=[
            Claim(file="shop/pricing.py", line=5, symbol="apply_discount_v2"),
            Claim(file="shop/pricing.py", line=5, quote="rate = COUPONS.get(code, 0.0)"),  # the old line, not base's
            Claim(file="shop/pricing.py", line=99),
            Claim(file="shop/missing.py", line=1),
            Claim(file="shop/pricing.py", line=4, commit=shop.other),  # exists, but not in main's history
            Claim(file="shop/pricing.py", line=4, symbol="apply_coupon", quote="def apply_coupon(total, code):"),
        ],
        suspect_commit="abcdef1234567",
    )
    checked = check_report(report, shop.view)
    kinds = sorted((f.where, f.kind) for f in checked.failures)
    assert kinds == [
        ("evidence[0]", "symbol"),
        ("evidence[1]", "quote"),
        ("evidence[2]", "line"),
        ("evidence[3]", "file"),
        ("evidence[4]", "commit"),
        ("root_cause", "commit"),
        ("root_cause", "file"),
        ("root_cause", "symbol"),
        ("suspect_commit", "commit"),
    ]
    clean = scrub(report, checked.failures)
    assert [c.model_dump(exclude_defaults=True) for c in clean.evidence] == [
        {"file": "shop/pricing.py", "line": 4, "symbol": "apply_coupon", "quote": "def apply_coupon(total, code):"}
    ]
    assert clean.suspect_commit is None
    assert clean.root_cause == (
        f"`{UNVERIFIED}` in shop/pricing.py divides by zero; see {UNVERIFIED} and {UNVERIFIED}."
    )
    text = clean.model_dump_json()
    for fabricated in ("apply_discount_v2", "payments.py", "9f8e7d6c5b4a", "abcdef1234567", shop.other):
        assert fabricated not in text
    summary = grounding.grounding_of(checked, retried=True)
    assert (summary.rejected, summary.retried) == (9, True)
    assert summary.rejected_by_kind == {"symbol": 2, "quote": 1, "line": 1, "file": 2, "commit": 3}
    assert grounding.lowered_confidence(0.8, checked) < 0.8
    assert not grounding.stands(clean, checked)  # most of what it named was not there


def test_a_line_past_the_end_of_the_file_in_text_is_rejected(shop: Shop) -> None:
    report = draft(root_cause="The failure is at shop/pricing.py:6, not shop/pricing.py:60.")
    checked = check_report(report, shop.view)
    assert [(f.kind, f.token) for f in checked.failures] == [("line", "shop/pricing.py:60")]
    assert scrub(report, checked.failures).root_cause == f"The failure is at shop/pricing.py:6, not {UNVERIFIED}."


def test_a_bare_file_name_resolves_to_the_one_repository_file_it_names(shop: Shop) -> None:
    checked = check_report(
        draft(root_cause="pricing.py:5 raises; price.js is fine; notes.txt is not there."), shop.view
    )
    assert [(f.kind, f.token) for f in checked.failures] == [("file", "notes.txt")]


def test_quotes_match_whitespace_insensitively_as_part_of_a_line_or_lines() -> None:
    lines = BROKEN.splitlines()
    assert quote_matches(lines, "rate   =  COUPONS[code]", 5)
    assert quote_matches(lines, "COUPONS[code]", 5)
    assert quote_matches(lines, "def apply_coupon(total, code):\n    rate = COUPONS[code]", 4)
    assert quote_matches(lines, "...return round(total * (1 - rate), 2)", None)
    assert not quote_matches(lines, "COUPONS[code]", 6)
    assert not quote_matches(lines, "rate = COUPONS[code]\nreturn total", 5)
    assert not quote_matches(lines, "return total * 2", None)


def test_python_symbols_are_read_with_ast_not_guessed() -> None:
    source = (
        "import os\nX: int = 1\nclass A:\n    Y = 2\n    async def run(self):\n        def inner():\n            pass\n"
    )
    assert grounding.python_symbols(source) == {"X", "A", "A.Y", "Y", "A.run", "run", "A.run.inner", "inner"}
    assert grounding.defines_symbol(source, "m.py", "A.run()")
    assert not grounding.defines_symbol(source, "m.py", "os")
    assert not grounding.defines_symbol("# def fake():\n", "m.py", "fake")  # a comment is not a definition


def test_a_fabricated_name_is_dropped_wherever_the_text_repeats_it_with_or_without_parentheses(shop: Shop) -> None:
    report = draft(
        summary="apply_discount_v2 breaks checkout.",
        root_cause="`apply_discount_v2()` divides by zero.",
        next_steps=["Fix apply_discount_v2 and its callers."],
    )
    checked = check_report(report, shop.view)
    assert {(f.where, f.token) for f in checked.failures} == {("root_cause", "apply_discount_v2()")}
    clean = scrub(report, checked.failures)
    assert "apply_discount_v2" not in clean.model_dump_json()
    assert clean.summary == f"{UNVERIFIED} breaks checkout."
    assert clean.next_steps == [f"Fix {UNVERIFIED} and its callers."]


def test_names_the_text_calls_a_function_method_or_class_are_checked_without_parentheses(shop: Shop) -> None:
    report = draft(
        root_cause="The method `Cart.total_v2` and the PriceEngine class are wrong; def compute_v3 too. "
        "The `Cart.total` method, class `Cart`, the function apply_coupon and the `formatPrice` function are "
        "real; the class of errors is known, the function returns None, the `json.loads` function is a library's.",
    )
    checked = check_report(report, shop.view)
    assert sorted(f.token for f in checked.failures) == ["Cart.total_v2", "PriceEngine", "compute_v3"]
    assert all(f.kind == "symbol" for f in checked.failures)
    clean = scrub(report, checked.failures).root_cause
    assert clean.startswith(f"The method `{UNVERIFIED}` and the {UNVERIFIED} class are wrong; def {UNVERIFIED} too.")
    assert "`Cart.total` method" in clean and "`formatPrice` function" in clean

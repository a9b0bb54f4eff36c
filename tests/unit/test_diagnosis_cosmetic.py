"""Which candidate commits diagnosis sets aside, table-driven: cosmetic source changes, test-only commits, commits
the repository lists in .git-blame-ignore-revs; and the captured frame a reproduction replays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from pagerpatch.git.paths import is_test_path
from pagerpatch.traces.stacktrace import Frame
from schemas.events import FrameVars
from services.diagnosis.domain.cosmetic import cosmetic_change
from services.diagnosis.domain.facts import Commit
from services.diagnosis.domain.reproduction import reproduction_for
from services.diagnosis.domain.vetting import IGNORED, only_tests, parse_ignore_revs, set_aside

APPLY = """\
def apply_coupon(cart, code):
    rate = COUPONS[code]
    return round(cart.total * (1 - rate), 2)


def other(x):
    return x + 1
"""


@dataclass(frozen=True)
class Change:
    after: str
    expected: str | None  # the reason it is cosmetic, or None for a real change
    before: str = APPLY
    file: str = "shop/pricing.py"
    function: str | None = "apply_coupon"


PYTHON = {
    "docstring added": Change(
        APPLY.replace("code):\n", 'code):\n    """The cart total after the coupon `code`."""\n'),
        "only docstrings changed in apply_coupon",
    ),
    "docstring reworded": Change(
        APPLY.replace("code):\n", 'code):\n    """Cart total, discounted."""\n'),
        "only docstrings changed in apply_coupon",
        before=APPLY.replace("code):\n", 'code):\n    """The discounted total."""\n'),
    ),
    "comment only": Change(
        APPLY.replace("    rate = COUPONS[code]\n", "    # upper case\n    rate = COUPONS[code]  # KeyError?\n"),
        "only comments or formatting changed in apply_coupon",
    ),
    "blank lines and indentation of a continuation": Change(
        APPLY.replace("    return round(", "\n    return round(\n        "),
        "only comments or formatting changed in apply_coupon",
    ),
    "black-style rewrap: quotes, parentheses, trailing comma": Change(
        "def apply_coupon(cart, code):\n    rate = COUPONS[code]\n    return round(\n"
        "        cart.total * (1 - rate),\n        2,\n    )\n",
        "only comments or formatting changed in apply_coupon",
        before="def apply_coupon(cart, code):\n    rate = COUPONS[code]\n    return round(cart.total*(1-rate), 2)\n",
    ),
    "single to double quotes": Change(
        "def f(x):\n    return x['a']\n",
        "only comments or formatting changed in f",
        before='def f(x):\n    return x["a"]\n',
        function="f",
    ),
    "a renamed variable is NOT cosmetic": Change(APPLY.replace("rate", "discount"), None),
    "a real logic change": Change(APPLY.replace("COUPONS[code]", "COUPONS.get(code, 0)"), None),
    "a docstring AND a logic change": Change(
        APPLY.replace("code):\n", 'code):\n    """Doc."""\n').replace("2)", "3)"), None
    ),
    "the function is judged, not its neighbours": Change(
        APPLY.replace("code):\n", 'code):\n    """Doc."""\n').replace("x + 1", "x + 2"),
        "only docstrings changed in apply_coupon",
    ),
    "a neighbour's logic change when the whole module is judged": Change(
        APPLY.replace("x + 1", "x + 2"), None, function=None
    ),
    "module-level comment": Change(
        f"# pricing rules\n{APPLY}", "only comments or formatting changed in shop/pricing.py", function=None
    ),
    "a function the commit created is new code": Change(APPLY, None, before="def other(x):\n    return x + 1\n"),
    "a function renamed since is judged on the whole module": Change(APPLY.replace("apply_coupon", "discount"), None),
    "a qualified frame name is matched by its last part": Change(
        APPLY.replace("code):\n", 'code):\n    """Doc."""\n'),
        "only docstrings changed in apply_coupon",
        function="shop.pricing.apply_coupon",
    ),
    "an f-string first statement is no docstring": Change(
        "def f(x):\n    f'{x}'\n    return x\n", None, before="def f(x):\n    f'{x!r}'\n    return x\n", function="f"
    ),
    "Python that does not parse is compared by tokens": Change(
        "print 'x'  # py2\n",
        "only whitespace, comments or formatting changed in old.py",
        before="print   'x'\n",
        file="old.py",
        function=None,
    ),
    "a created file is a real change": Change(APPLY, None, before=""),
}

JS = "function total(cart) {\n  return cart.items.reduce((a, b) => a + b.price, 0);\n}\n"
OTHER = {
    "js: comments and whitespace": Change(
        "// sum of prices\nfunction total(cart) {\n  /* no tax */\n  return cart.items.reduce(\n"
        "    (a, b) => a + b.price,\n    0);\n}\n",
        "only whitespace, comments or formatting changed in web/cart.js",
        before=JS,
        file="web/cart.js",
        function="total",
    ),
    "js: a real change": Change(JS.replace("0)", "1)"), None, before=JS, file="web/cart.js"),
    "js: a comment marker inside a string is code": Change(
        'const u = "http://x";\n', None, before='const u = "http://y";\n', file="a.js"
    ),
    "go: gofmt": Change(
        "func Total(xs []int) int {\n\ts := 0\n\tfor _, x := range xs {\n\t\ts += x\n\t}\n\treturn s\n}\n",
        "only whitespace, comments or formatting changed in total.go",
        before="func Total(xs []int) int {\n  s := 0\n  for _, x := range xs { s += x }\n  return s\n}\n",
        file="total.go",
    ),
    "c: a preprocessor line is not a comment": Change(
        '#include "b.h"\nint x;\n', None, before='#include "a.h"\nint x;\n', file="x.c"
    ),
}


@pytest.mark.parametrize("case", [*PYTHON.values(), *OTHER.values()], ids=[*PYTHON, *OTHER])
def test_cosmetic_change(case: Change) -> None:
    assert cosmetic_change(case.before, case.after, file=case.file, function=case.function) == case.expected


def test_a_missing_side_or_an_unchanged_file_is_never_called_cosmetic() -> None:
    assert cosmetic_change(None, APPLY, file="a.py", function="apply_coupon") is None
    assert cosmetic_change(APPLY, None, file="a.py", function="apply_coupon") is None
    assert cosmetic_change(APPLY, APPLY, file="a.py", function="apply_coupon") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_pricing.py", True),
        ("pkg/tests/helpers.py", True),
        ("test_pricing.py", True),
        ("shop/pricing_test.py", True),
        ("tests/conftest.py", True),
        ("conftest.py", True),
        ("internal/cart_test.go", True),
        ("web/cart.spec.ts", True),
        ("web/cart.test.jsx", True),
        ("web/__tests__/cart.js", True),
        ("src/test/java/com/shop/PricingTest.java", True),
        ("spec/models/cart_spec.rb", True),
        ("shop/pricing.py", False),
        ("shop/testing_utils.py", False),
        ("shop/contest.py", False),
        ("shop/latest.py", False),
        ("src/_pytest/python.py", False),
        ("attest/cart.go", False),
        ("web/cart.ts", False),
    ],
)
def test_is_test_path(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


def test_only_tests() -> None:
    assert only_tests(set()) is None  # nothing known is not "only tests"
    assert only_tests({"tests/test_a.py", "shop/a.py"}) is None
    assert only_tests({"tests/test_a.py"}) == "changed only test files: tests/test_a.py"
    many = {f"tests/test_{c}.py" for c in "abcde"}
    assert only_tests(many) == ("changed only test files: tests/test_a.py, tests/test_b.py, tests/test_c.py and 2 more")


def test_parse_ignore_revs_keeps_what_git_accepts() -> None:
    full, other = "a" * 40, "B" * 40
    text = f"# black, 2023\n{full}\n\n  {other}  # isort\nabc1234\nnot a sha\n"
    assert parse_ignore_revs(text) == frozenset({full, other.lower()})
    assert parse_ignore_revs(None) == frozenset()


def test_set_aside_entry() -> None:
    when = datetime(2024, 3, 1, tzinfo=UTC)
    docs = Commit("abc1234" + "0" * 33, ("1" * 40,), "Eve", "eve@example.com", when, when, "docs: tidy")
    assert set_aside(docs, "only docstrings changed in apply_coupon") == (
        "abc1234 docs: tidy (skipped: only docstrings changed in apply_coupon)"
    )
    assert set_aside(docs, IGNORED) == "abc1234 docs: tidy (skipped: listed in .git-blame-ignore-revs)"


# ---------------------------------------------------------------- the reproduction

INNER = Frame("/srv/app/shop/pricing.py", 2, "apply_coupon")
MAPPED = [(Frame("/srv/app/shop/api.py", 9, "checkout"), "shop/api.py"), (INNER, "shop/pricing.py")]


def vars_of(file: str, function: str, line: int | None = None, **values: object) -> FrameVars:
    return FrameVars(file=file, function=function, line=line, vars=values)


@pytest.mark.parametrize(
    ("captured", "expected"),
    [
        pytest.param([vars_of("/srv/app/shop/pricing.py", "apply_coupon", 2, code="X")], {"code": "X"}, id="absolute"),
        pytest.param([vars_of("shop/pricing.py", "apply_coupon", code="X")], {"code": "X"}, id="relative, no line"),
        pytest.param([vars_of("pricing.py", "apply_coupon", code="X")], {"code": "X"}, id="module-relative tail"),
        pytest.param([vars_of("shop/pricing.py", "Cart.apply_coupon", code="X")], {"code": "X"}, id="qualified name"),
        pytest.param([vars_of("shop/api.py", "checkout", cart=1)], None, id="only an outer frame's vars"),
        pytest.param([vars_of("other/pricing.py", "apply_coupon", code="X")], None, id="another file"),
        pytest.param([vars_of("shop/pricing.py", "find_coupon", code="X")], None, id="another function"),
        pytest.param(
            [vars_of("shop/pricing.py", "apply_coupon", 2, code="A"), vars_of("shop/pricing.py", "apply_coupon", 7)],
            {"code": "A"},
            id="recursion: the one on the failing line",
        ),
        pytest.param([], None, id="no vars at all"),
    ],
)
def test_reproduction_for(captured: list[FrameVars], expected: dict[str, object] | None) -> None:
    found = reproduction_for(captured, MAPPED)
    if expected is None:
        assert found is None
        return
    assert found is not None and found.vars == expected
    assert (found.file, found.line) == ("shop/pricing.py", 2)  # repository-relative, the trace's line


def test_no_repository_frame_has_no_reproduction() -> None:
    assert reproduction_for([vars_of("shop/pricing.py", "apply_coupon", code="X")], []) is None

"""The reproduction from captured frame variables: when it is possible, the script it runs (executed here for real
with this interpreter, in small trees: src/ layout, top-level layout), and how its outcome reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.events import DiagnosisReadyPayload, FrameVars
from services.fixgen.domain import reproduction
from services.fixgen.domain.reproduction import EXIT_IMPOSSIBLE, EXIT_OTHER, EXIT_RAISED, EXIT_RETURNED, Reproduction
from services.fixgen.memory import sandbox_result

TRACE = ["src/shop/pricing.py", "tests/test_pricing.py"]


def ready(frame: FrameVars | None, exception: str | None = "KeyError") -> DiagnosisReadyPayload:
    return DiagnosisReadyPayload(
        repo="shop", base_commit="a" * 40, root_cause="x", confidence=0.5, reproduction=frame, exception_type=exception
    )


def frame(**update: Any) -> FrameVars:
    values: dict[str, Any] = {"file": "/srv/app/src/shop/pricing.py", "function": "price", "vars": {"code": "X"}}
    return FrameVars(**{**values, **update})


@pytest.mark.parametrize(
    ("diagnosis", "why"),
    [
        (ready(None), "carried no local variables"),
        (ready(frame(), exception=None), "names no exception type"),
        (ready(frame(), exception="not a type!"), "names no exception type"),
        (ready(frame(function="Cart.price")), "is not a top-level function"),
        (ready(frame(function="<lambda>")), "is not a top-level function"),
        (ready(frame(vars={"self": "<Cart>", "code": "X"})), "is not a top-level function"),
        (ready(frame(file="/usr/lib/python3.11/json/decoder.py")), "is not a Python file of the repository"),
        (ready(frame(file="templates/cart.html")), "is not a Python file of the repository"),
        (ready(frame(vars={"code": "X", "key": "AKIAABCDEFGHIJKLMNOP"})), "looks like a secret"),
    ],
)
def test_when_no_reproduction_is_possible_it_says_why(diagnosis: DiagnosisReadyPayload, why: str) -> None:
    planned = reproduction.plan(diagnosis, TRACE)
    assert isinstance(planned, str) and why in planned


def test_a_deployed_path_maps_to_the_repository_file_of_the_trace() -> None:
    planned = reproduction.plan(ready(frame()), TRACE)
    assert planned == Reproduction(file="src/shop/pricing.py", function="price", arguments={"code": "X"},
                                   exception_type="KeyError")  # fmt: skip
    relative = reproduction.plan(ready(frame(file="shop/tax.py")), TRACE)
    assert isinstance(relative, Reproduction) and relative.file == "shop/tax.py"


PRICING = """\
PRICES = {"A": 10}


def price(code, qty=1, /, *extra, discount=0, **options):
    if options.get("explode"):
        raise ValueError("boom")
    return PRICES[code] * qty - discount + sum(extra)


async def later(code):
    return PRICES[code]


def needs(code, table):
    return table[code]
"""


def tree(tmp_path: Path, layout: str) -> Path:
    root = tmp_path / layout
    package = root / ("src/shop" if layout == "src" else "shop")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pricing.py").write_text(PRICING)
    return root


def run(root: Path, planned: Reproduction) -> subprocess.CompletedProcess[str]:
    script = root.parent / f"{root.name}-script.py"
    script.write_text(reproduction.script(planned))
    return subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, timeout=60)


def planned(layout: str, function: str = "price", expected: str = "KeyError", **arguments: Any) -> Reproduction:
    file = "src/shop/pricing.py" if layout == "src" else "shop/pricing.py"
    return Reproduction(file=file, function=function, arguments=arguments, exception_type=expected)


@pytest.mark.parametrize("layout", ["src", "top"])
@pytest.mark.parametrize(
    ("function", "expected", "arguments", "code", "said"),
    [
        ("price", "KeyError", {"code": "B"}, EXIT_RAISED, "raised KeyError"),
        ("price", "builtins.KeyError", {"code": "B"}, EXIT_RAISED, "raised KeyError"),
        ("price", "KeyError", {"code": "A", "qty": 2, "extra": [1, 2], "discount": 3}, EXIT_RETURNED, "returned"),
        ("price", "KeyError", {"code": "A", "options": {"explode": True}}, EXIT_OTHER, "raised something else"),
        ("price", "KeyError", {"qty": 2}, EXIT_IMPOSSIBLE, "argument 'code' was not captured"),
        ("price", "KeyError", {"code": "A", "extra": [1]}, EXIT_IMPOSSIBLE, "argument before *args was not captured"),
        ("later", "KeyError", {"code": "B", "unused_local": 1}, EXIT_RAISED, "raised KeyError"),
        ("needs", "KeyError", {"code": "A", "table": {}}, EXIT_RAISED, "raised KeyError"),
        ("PRICES", "KeyError", {}, EXIT_IMPOSSIBLE, "is not a top-level function"),
        ("missing", "KeyError", {}, EXIT_IMPOSSIBLE, "is not a top-level function"),
    ],
)
def test_the_script_calls_the_function_from_the_worktree_and_exits_with_what_happened(
    tmp_path: Path, layout: str, function: str, expected: str, arguments: dict[str, Any], code: int, said: str
) -> None:
    done = run(tree(tmp_path, layout), planned(layout, function, expected, **arguments))
    assert done.returncode == code, done.stdout + done.stderr
    assert said in done.stdout
    result = sandbox_result("python script.py", exit_code=done.returncode, output=done.stdout)
    outcome, detail = reproduction.outcome_of(result)
    assert outcome == {EXIT_RAISED: "raised", EXIT_RETURNED: "returned", EXIT_OTHER: "other"}.get(code, "impossible")
    assert said.split(":")[0] in detail


def test_the_worktree_copy_wins_over_an_installed_one(tmp_path: Path) -> None:
    root = tree(tmp_path, "src")
    elsewhere = tmp_path / "site" / "shop"
    elsewhere.mkdir(parents=True)
    (elsewhere / "__init__.py").write_text("")
    (elsewhere / "pricing.py").write_text("def price(code):\n    return 0\n")
    script = tmp_path / "script.py"
    script.write_text(reproduction.script(planned("src", code="B")))
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == EXIT_RAISED, done.stdout + done.stderr


def test_the_regression_test_is_named_after_the_incident_and_says_why(tmp_path: Path) -> None:
    path, text = reproduction.regression_test(planned("src", code="B"), "6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5b")
    assert path == "tests/test_pagerpatch_regression_6a1f0c3e.py"
    assert text.startswith('"""Regression test added by pagerpatch for incident 6a1f0c3e-')
    assert "def test_price_does_not_raise_keyerror_again():" in text
    compile(text, path, "exec")  # valid Python (it is run for real in tests/integration/test_fixgen_proof.py)


R = Reproduction(file="a.py", function="f", arguments={}, exception_type="KeyError")


@pytest.mark.parametrize(
    ("at_base", "after", "proves", "detail"),
    [
        (("raised", "KeyError"), ("returned", ""), True, "raises KeyError at the base commit and returns normally"),
        (("raised", "KeyError"), ("other", "ValueError"), True, "no longer raises it (ValueError)"),
        (("raised", "KeyError"), ("raised", "KeyError"), False, "still raises KeyError with the revert"),
        (("raised", "KeyError"), ("impossible", "ImportError"), False, "was impossible (ImportError)"),
        (("returned", ""), None, False, "did not raise KeyError"),
        (("inconclusive", "timed out"), None, False, "did not raise KeyError (timed out)"),
    ],
)
def test_the_reproduction_check(
    at_base: tuple[reproduction.ReproductionOutcome, str],
    after: tuple[reproduction.ReproductionOutcome, str] | None,
    proves: bool,
    detail: str,
) -> None:
    checked = reproduction.check(R, at_base, after)
    assert checked.proves is proves and detail in checked.detail


def test_a_timed_out_or_crashed_script_is_inconclusive() -> None:
    late = sandbox_result("python s.py", exit_code=None, timed_out=True)
    assert reproduction.outcome_of(late)[0] == "inconclusive"
    crashed = sandbox_result("python s.py", exit_code=139, output="Segmentation fault\n")
    assert reproduction.outcome_of(crashed) == ("inconclusive", "Segmentation fault")

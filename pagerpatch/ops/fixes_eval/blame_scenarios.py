"""Scenarios about *which* commit is blamed: a newer docstring-only, reformatting or test-only commit must not win
over the commit that changed the logic, and a src-layout package with a build step must be tested as it is in the
worktree (not a copy pagerpatch's own environment can import).

Each is a real small history (see history.py); the oracle tests are not in the repositories.
"""

from __future__ import annotations

from pagerpatch.ops.demo_repo import ALICE, BOB, CAROL
from pagerpatch.ops.fixes_eval.history import DAN, GITIGNORE, Edit, Scenario, Step, pyproject, text

__all__ = ["DOCSTRING", "REFORMAT", "SRC_LAYOUT", "TEST_ONLY"]

# ---------------------------------------------------------------- (a) a docstring-only follow-up in the function

_DISCOUNTS = text('''
    """Discount codes customers type at checkout."""

    CODES = {"WELCOME10": 10}


    def discount_cents(total_cents: int, code: str) -> int:
        """The discount `code` gives on `total_cents`."""
        if total_cents <= 0:
            return 0
        percent = CODES.get(code.strip().upper(), 0)
        return total_cents * percent // 100


    def invoice_total(total_cents: int, code: str = "") -> int:
        """What the customer pays for `total_cents` of goods with discount `code`."""
        if not code:
            return total_cents
        return total_cents - discount_cents(total_cents, code)
''')
_DISCOUNT_TESTS = text("""
    from invoicing.discounts import invoice_total


    def test_no_code_pays_full_price() -> None:
        assert invoice_total(5000) == 5000


    def test_welcome_code_takes_ten_percent() -> None:
        assert invoice_total(5000, "welcome10") == 4500
""")

# fmt: off
DOCSTRING = Scenario(
    name="docstring",
    letter="a",
    title="the bug's function later gets a docstring-only commit (newest in the function's history)",
    steps=(
        Step("import", "Initial import of invoicing\n", ALICE, "2024-03-04T09:00:00+01:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("invoicing"), "invoicing/__init__.py": "",
            "invoicing/discounts.py": _DISCOUNTS, "tests/test_discounts.py": _DISCOUNT_TESTS,
        }),
        Step("vip", "discounts: add the VIP25 code\n", BOB, "2024-03-11T14:20:00+01:00", edits=(
            Edit("invoicing/discounts.py", '{"WELCOME10": 10}', '{"WELCOME10": 10, "VIP25": 25}'),
            Edit("tests/test_discounts.py", '== 4500\n', '== 4500\n\n\ndef test_vip_code_takes_a_quarter() -> None:\n'
                 '    assert invoice_total(8000, "VIP25") == 6000\n\n\ndef test_unknown_code_pays_full_price() -> None:'
                 '\n    assert invoice_total(5000, "NOPE") == 5000\n'),
        )),
        Step("bug", "discounts: look codes up directly\n\nThe form validates codes, so the fallback never "
             "triggers.\n", CAROL, "2024-03-18T10:05:00+01:00", edits=(
            Edit("invoicing/discounts.py", "CODES.get(code.strip().upper(), 0)", "CODES[code.strip().upper()]"),
        )),
        Step("docstring", "docs: say how discounts round\n", DAN, "2024-03-25T16:45:00+01:00", edits=(
            Edit("invoicing/discounts.py", '    """The discount `code` gives on `total_cents`."""\n',
                 '    """The discount `code` gives on `total_cents`.\n\n    Percentages apply to whole cents and '
                 'round down: a discount never exceeds the advertised rate.\n    """\n'),
        )),
        Step("readme", "readme: list the discount codes\n", ALICE, "2024-04-01T11:30:00+02:00", {
            "README.md": "# invoicing\n\nDiscount codes: WELCOME10 (10%), VIP25 (25%).\n",
        }),
    ),
    trigger='from invoicing.discounts import invoice_total\ninvoice_total(12000, "SPRING5")\n',
    expected="proved",
    cosmetic=("docstring",),
    mentions="test_unknown_code_pays_full_price",
    oracle=text("""
        from invoicing.discounts import invoice_total


        def test_unknown_code_pays_full_price() -> None:
            assert invoice_total(12000, "SPRING5") == 12000


        def test_known_codes_still_apply() -> None:
            assert invoice_total(10000, " vip25 ") == 7500
    """),
)
# fmt: on

# ---------------------------------------------------------------- (b) a black-style reformatting of the failing line

_RATES = text('''
    """Shipping rates per destination zone."""

    RATES = {
        'domestic': {'base': 500, 'per_kg': 100},
        'eu': {'base': 1500, 'per_kg': 250},
        'world': {'base': 2500, 'per_kg': 400},
    }


    def surcharge(grams, per_kg):
        return max(0, grams - 1000) * per_kg // 1000


    def rate_cents(zone, grams):
        """The price of one parcel of `grams` grams to `zone`."""
        rates = RATES.get(zone.lower(), RATES['world'])
        grams = max(grams, 0)
        total = rates['base'] + surcharge(grams, rates['per_kg'])
        return total


    def quote(parcels):
        return sum(rate_cents(p['zone'], p['grams']) for p in parcels)
''')
_RATE_TESTS = text("""
    from shipping.rates import quote, rate_cents


    def test_domestic_parcel_under_a_kilo():
        assert rate_cents('domestic', 800) == 500


    def test_heavy_parcel_pays_per_kilo():
        assert rate_cents('eu', 3000) == 2000


    def test_zone_names_ignore_case():
        assert quote([{'zone': 'EU', 'grams': 1000}]) == 1500


    def test_unknown_zone_uses_world_rate():
        assert rate_cents('mars', 500) == 2500
""")
_BUGGY_LOOKUP = "    rates = RATES.get(zone)\n"


def _black(source: str) -> str:
    """What `black` makes of the rates files: double quotes (the bug's own line has none, so it stays as it is)."""
    return source.replace("'", '"')


# fmt: off
REFORMAT = Scenario(
    name="reformat",
    letter="b",
    title="a black-style reformatting commit rewrites the failing line after the bug",
    steps=(
        Step("import", "Initial import of shipping rates\n", ALICE, "2024-04-08T09:10:00+02:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("shipping"), "shipping/__init__.py": "",
            "shipping/rates.py": _RATES, "tests/test_rates.py": _RATE_TESTS,
        }),
        Step("bug", "rates: zones are validated upstream, look them up directly\n", CAROL,
             "2024-04-15T13:40:00+02:00", edits=(
            Edit("shipping/rates.py", "    rates = RATES.get(zone.lower(), RATES['world'])\n", _BUGGY_LOOKUP),
        )),
        Step("black", "style: format with black\n", DAN, "2024-04-22T17:00:00+02:00", {
            "shipping/rates.py": _black(_RATES.replace("    rates = RATES.get(zone.lower(), RATES['world'])\n",
                                                       _BUGGY_LOOKUP)),
            "tests/test_rates.py": _black(_RATE_TESTS),
        }),
    ),
    trigger='from shipping.rates import quote\nquote([{"zone": "EU", "grams": 2500}])\n',
    expected="proved",
    cosmetic=("black",),
    mentions="test_zone_names_ignore_case",
    oracle=text("""
        from shipping.rates import quote, rate_cents


        def test_zone_names_ignore_case() -> None:
            assert quote([{"zone": "EU", "grams": 2500}]) == 1875


        def test_unknown_zone_uses_world_rate() -> None:
            assert rate_cents("mars", 500) == 2500
    """),
)
# fmt: on

# ---------------------------------------------------------------- (c) test-only commits on the traced test file

_TOTALS = text('''
    """Order totals."""


    def line_total(item: dict) -> int:
        return item["price_cents"] * item["qty"]


    def order_total(items: list) -> int:
        return sum(line_total(item) for item in items)
''')
_TOTAL_TESTS = text("""
    from orders.totals import order_total


    def test_empty_order_is_free():
        assert order_total([]) == 0


    def test_order_total_sums_lines():
        items = [{"price_cents": 250, "qty": 2}, {"price_cents": 100, "qty": 3}]
        total = order_total(items)
        assert total == 800
""")

# fmt: off
TEST_ONLY = Scenario(
    name="test-only",
    letter="c",
    title="the alert's trace runs through a test file that test-only commits (a 'fix mypy', its creation) touched",
    steps=(
        Step("import", "Initial import of orders\n", ALICE, "2024-05-06T09:00:00+02:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("orders"), "orders/__init__.py": "",
            "orders/totals.py": _TOTALS,
        }),
        Step("tests", "tests: cover order totals\n", BOB, "2024-05-08T15:30:00+02:00", {
            "tests/test_totals.py": _TOTAL_TESTS,
        }),
        Step("bug", "orders: read quantities by their API name\n", CAROL, "2024-05-14T11:15:00+02:00", edits=(
            Edit("orders/totals.py", 'item["qty"]', 'item["quantity"]'),
        )),
        Step("mypy", "tests: fix mypy errors in test_totals\n", DAN, "2024-05-21T10:00:00+02:00", edits=(
            Edit("tests/test_totals.py", "def test_empty_order_is_free():", "def test_empty_order_is_free() -> None:"),
            Edit("tests/test_totals.py", "def test_order_total_sums_lines():",
                 "def test_order_total_sums_lines() -> None:"),
            Edit("tests/test_totals.py", "    items = [", "    items: list[dict[str, int]] = ["),
            Edit("tests/test_totals.py", "    total = order_total(items)", "    total: int = order_total(items)"),
        )),
    ),
    trigger="from tests.test_totals import test_order_total_sums_lines\ntest_order_total_sums_lines()\n",
    expected="proved",
    cosmetic=("tests", "mypy"),
    mentions="test_order_total_sums_lines",
    oracle=text("""
        from orders.totals import order_total


        def test_quantities_are_read_from_qty() -> None:
            assert order_total([{"price_cents": 250, "qty": 2}]) == 500
    """),
)
# fmt: on

# ---------------------------------------------------------------- (d) a src layout with a build step

_LEDGER_VERSION = "2.3.0"
_DEVELOP = text(f'''
    """Set up a development environment without network: generate the version module, put src/ on the path.

    What `pip install -e .` does for this package; pagerpatch runs it as the repository's setup_command.
    """

    import pathlib
    import sysconfig

    ROOT = pathlib.Path(__file__).resolve().parent.parent
    VERSION = "{_LEDGER_VERSION}"

    (ROOT / "src" / "ledger" / "_version.py").write_text(f'version = "{{VERSION}}"\\n')
    site = pathlib.Path(sysconfig.get_paths()["purelib"])
    site.mkdir(parents=True, exist_ok=True)
    (site / "ledger-dev.pth").write_text(str(ROOT / "src") + "\\n")
    print(f"ledger {{VERSION}} set up for development from {{ROOT}}")
''')
_LEDGER_PYPROJECT = text("""
    [build-system]
    requires = ["setuptools>=64"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "ledger"
    dynamic = ["version"]
    requires-python = ">=3.10"

    [tool.pytest.ini_options]
    testpaths = ["tests"]
""")
_ACCOUNTS = text('''
    """Account balances from ledger exports."""


    def parse_amount(text: str) -> int:
        """An amount in cents as exports write it: digits, with optional thousands separators."""
        return int(text.replace(",", ""))


    def balance(entries: list[dict[str, str]]) -> int:
        return sum(parse_amount(entry["amount"]) for entry in entries)
''')
_ACCOUNT_TESTS = text(f"""
    import ledger
    from ledger.accounts import balance


    def test_version_is_generated() -> None:
        assert ledger.__version__ == "{_LEDGER_VERSION}"


    def test_balance_of_plain_amounts() -> None:
        assert balance([{{"amount": "100"}}, {{"amount": "-40"}}]) == 60


    def test_balance_accepts_thousands_separators() -> None:
        assert balance([{{"amount": "1,200"}}, {{"amount": "5"}}]) == 1205
""")

# fmt: off
SRC_LAYOUT = Scenario(
    name="src-layout",
    letter="d",
    title="a src-layout package with a generated _version.py, set up by setup_command; pagerpatch's environment "
    "can import an older copy of it",
    steps=(
        Step("import", "Initial import of ledger\n", ALICE, "2024-06-03T09:30:00+02:00", {
            ".gitignore": GITIGNORE + "src/ledger/_version.py\n", "pyproject.toml": _LEDGER_PYPROJECT,
            "tools/develop.py": _DEVELOP,
            "src/ledger/__init__.py": '"""Ledger helpers."""\n\nfrom ledger._version import version as __version__\n'
                                      '\n__all__ = ["__version__"]\n',
            "src/ledger/accounts.py": _ACCOUNTS, "tests/test_accounts.py": _ACCOUNT_TESTS,
        }),
        Step("currencies", "accounts: balances per currency\n", BOB, "2024-06-10T14:00:00+02:00", edits=(
            Edit("src/ledger/accounts.py", 'entries)\n', 'entries)\n\n\ndef balance_by_currency(entries: list[dict['
                 'str, str]]) -> dict[str, int]:\n    out: dict[str, int] = {}\n    for entry in entries:\n'
                 '        currency = entry.get("currency", "EUR")\n        out[currency] = out.get(currency, 0) + '
                 'parse_amount(entry["amount"])\n    return out\n'),
        )),
        Step("bug", "accounts: exports no longer use thousands separators\n", CAROL, "2024-06-17T10:20:00+02:00",
             edits=(Edit("src/ledger/accounts.py", 'int(text.replace(",", ""))', "int(text)"),)),
        Step("readme", "docs: how to set up a development environment\n", ALICE, "2024-06-24T09:00:00+02:00", {
            "README.md": "# ledger\n\n    python tools/develop.py   # once, in your virtualenv\n    python -m pytest\n",
        }),
    ),
    trigger='from ledger.accounts import balance\nbalance([{"amount": "1,200"}])\n',
    expected="proved",
    code_root="src",
    generated={"src/ledger/_version.py": f'version = "{_LEDGER_VERSION}"\n'},
    setup_command="python tools/develop.py",
    installed_copy=True,
    mentions="test_balance_accepts_thousands_separators",
    oracle=text("""
        from ledger.accounts import balance


        def test_thousands_separators_are_accepted() -> None:
            assert balance([{"amount": "12,000"}, {"amount": "1"}]) == 12001
    """),
)
# fmt: on

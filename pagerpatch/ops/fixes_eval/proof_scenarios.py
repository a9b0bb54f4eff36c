"""Scenarios about *whether* a revert is a fix: one that conflicts, one that breaks later code, a test already failing
at HEAD (the baseline), a bug only the alert's captured variables reproduce, and one nothing proves.

Each is a real small history (see history.py); the oracle tests are not in the repositories.
"""

from __future__ import annotations

from pagerpatch.ops.demo_repo import ALICE, BOB, CAROL
from pagerpatch.ops.fixes_eval.history import DAN, GITIGNORE, Edit, Scenario, Step, pyproject, text

__all__ = ["BASELINE", "BREAKS_LATER", "CONFLICT", "REPRODUCTION", "UNCOVERED"]

# ---------------------------------------------------------------- (e) the revert conflicts with a later commit

_SEARCH = text('''
    """Product search."""

    PRODUCTS = ["lamp", "mug", "notebook", "pen", "stapler"]


    def parse_page(params: dict[str, str]) -> tuple[int, int]:
        """Offset and size of the requested page of results."""
        size = int(params.get("size", "20"))
        page = int(params.get("page", "1"))
        return (page - 1) * size, size


    def search(query: str, params: dict[str, str]) -> list[str]:
        offset, size = parse_page(params)
        found = [p for p in PRODUCTS if query in p]
        return found[offset : offset + size]
''')
_SEARCH_TESTS = text("""
    from catalog.search import parse_page, search


    def test_first_page_by_default() -> None:
        assert parse_page({}) == (0, 20)


    def test_second_page_of_two() -> None:
        assert parse_page({"page": "2", "size": "2"}) == (2, 2)


    def test_search_filters_products() -> None:
        assert search("p", {}) == ["lamp", "pen", "stapler"]
""")

# fmt: off
CONFLICT = Scenario(
    name="conflict",
    letter="e",
    title="a later commit changed the line next to the bug: its revert conflicts (fall through, then refuse)",
    steps=(
        Step("import", "Initial import of the catalog\n", ALICE, "2024-07-01T09:00:00+02:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("catalog"), "catalog/__init__.py": "",
            "catalog/search.py": _SEARCH, "tests/test_search.py": _SEARCH_TESTS,
        }),
        Step("bug", "search: the new client always sends a page size\n", CAROL, "2024-07-08T16:10:00+02:00",
             edits=(Edit("catalog/search.py", 'int(params.get("size", "20"))', 'int(params["size"])'),)),
        Step("clamp", "search: clamp page numbers below 1\n", BOB, "2024-07-10T11:45:00+02:00", edits=(
            Edit("catalog/search.py", '    page = int(params.get("page", "1"))',
                 '    page = max(1, int(params.get("page", "1")))'),
            Edit("tests/test_search.py", "(2, 2)\n", '(2, 2)\n\n\ndef test_page_zero_is_the_first_page() -> None:\n'
                 '    assert parse_page({"page": "0", "size": "5"}) == (0, 5)\n'),
        )),
    ),
    trigger='from catalog.search import search\nsearch("lamp", {})\n',
    expected="refused",
    mentions="conflict",
    oracle=text("""
        from catalog.search import parse_page, search


        def test_page_size_defaults_to_twenty() -> None:
            assert parse_page({}) == (0, 20)
            assert search("lamp", {}) == ["lamp"]
    """),
)
# fmt: on

# ---------------------------------------------------------------- (f) the revert breaks code a later commit added

_PRICING = text('''
    """Unit prices with quantity tiers."""


    def unit_price(product: dict, quantity: int) -> int:
        """The price of one unit when `quantity` are bought: the best tier reached, else the list price."""
        price = product["price_cents"]
        for min_quantity, tier_price in product.get("tiers", []):
            if quantity >= min_quantity:
                price = min(price, tier_price)
        return price
''')
_PRICING_TESTS = text("""
    from shop.pricing import unit_price

    LAMP = {"price_cents": 4000, "tiers": [[10, 3600], [50, 3200]]}


    def test_list_price_below_the_first_tier() -> None:
        assert unit_price(LAMP, 3) == 4000


    def test_tier_price_from_ten_units() -> None:
        assert unit_price(LAMP, 12) == 3600


    def test_product_without_tiers() -> None:
        assert unit_price({"price_cents": 999}, 100) == 999
""")
_FORMAT_CENTS = text('''


    def format_cents(cents: int) -> str:
        """`1234` as `$12.34`."""
        return f"${cents // 100}.{cents % 100:02d}"
''')
_RECEIPTS = text('''
    """Receipt lines."""

    from shop import pricing


    def receipt_line(name: str, quantity: int, unit_cents: int) -> str:
        return f"{quantity} x {name} @ {pricing.format_cents(unit_cents)}"
''')

# fmt: off
BREAKS_LATER = Scenario(
    name="breaks-later",
    letter="f",
    title="the bug's commit also added a helper later code uses: its revert breaks that code's test",
    steps=(
        Step("import", "Initial import of the shop\n", ALICE, "2024-08-05T09:00:00+02:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("shop"), "shop/__init__.py": "",
            "shop/pricing.py": _PRICING, "tests/test_pricing.py": _PRICING_TESTS,
        }),
        Step("bug", "pricing: tiers keyed by quantity, and format_cents for receipts\n", CAROL,
             "2024-08-12T10:30:00+02:00", edits=(
            Edit("shop/pricing.py", 'product.get("tiers", [])', 'product.get("tiers", {}).items()'),
            Edit("shop/pricing.py", "    return price\n", "    return price\n" + _FORMAT_CENTS),
        )),
        Step("receipts", "receipts: show each line's unit price\n", BOB, "2024-08-19T15:00:00+02:00", {
            "shop/receipts.py": _RECEIPTS,
            "tests/test_receipts.py": 'from shop.receipts import receipt_line\n\n\ndef test_receipt_line_shows_the_'
                                      'unit_price() -> None:\n    assert receipt_line("lamp", 2, 3600) == "2 x lamp @ '
                                      '$36.00"\n',
        }),
    ),
    trigger='from shop.pricing import unit_price\nunit_price({"price_cents": 4000, "tiers": [[10, 3600]]}, 12)\n',
    expected="refused",
    mentions="test_receipt_line_shows_the_unit_price",
    oracle=text("""
        from shop.pricing import unit_price


        def test_tiers_given_as_pairs() -> None:
            assert unit_price({"price_cents": 4000, "tiers": [[10, 3600]]}, 12) == 3600
    """),
)
# fmt: on

# ---------------------------------------------------------------- (g) a test already failing at HEAD: the baseline

_NOTES = text('''
    """Text helpers for note titles and previews."""

    import re


    def slugify(title: str) -> str:
        return re.sub(r"\\s+", "-", title.strip().lower())


    def headline(title: str) -> str:
        return title.strip().title()


    def first_sentence(text: str) -> str:
        """The text up to and including its first period (all of it when there is none)."""
        end = text.find(".")
        return text if end < 0 else text[: end + 1]
''')
_NOTES_TESTS = text("""
    from notes.text import first_sentence, headline, slugify


    def test_slugify_joins_words() -> None:
        assert slugify(" Weekly  plan ") == "weekly-plan"


    def test_headline_capitalises_words() -> None:
        assert headline("weekly plan") == "Weekly Plan"


    def test_first_sentence_stops_at_the_period() -> None:
        assert first_sentence("Buy milk. Then bread.") == "Buy milk."


    def test_first_sentence_without_period_is_the_whole_text() -> None:
        assert first_sentence("Buy milk") == "Buy milk"
""")

# fmt: off
BASELINE = Scenario(
    name="baseline",
    letter="g",
    title="a test unrelated to the bug fails at HEAD (the baseline); the test the bug broke still proves the fix",
    steps=(
        Step("import", "Initial import of notes\n", ALICE, "2024-09-02T09:00:00+02:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("notes"), "notes/__init__.py": "",
            "notes/text.py": _NOTES, "tests/test_text.py": _NOTES_TESTS,
        }),
        Step("apostrophes", "tests: headlines keep apostrophes (known failure, see #12)\n", BOB,
             "2024-09-04T17:20:00+02:00", edits=(
            Edit("tests/test_text.py", '"Weekly Plan"\n', '"Weekly Plan"\n\n\ndef test_headline_keeps_apostrophes() '
                 '-> None:\n    assert headline("they\'re here") == "They\'re Here"\n'),
        )),
        Step("bug", "text: first_sentence in one line\n", CAROL, "2024-09-09T10:00:00+02:00", edits=(
            Edit("notes/text.py", '    end = text.find(".")\n    return text if end < 0 else text[: end + 1]\n',
                 '    return text[: text.index(".") + 1]\n'),
        )),
        Step("slugs", "text: slugify drops punctuation\n", DAN, "2024-09-16T14:30:00+02:00", edits=(
            Edit("notes/text.py", 'return re.sub(r"\\s+", "-", title.strip().lower())',
                 'return re.sub(r"[^\\w]+", "-", title.strip().lower()).strip("-")'),
            Edit("tests/test_text.py", '== "weekly-plan"\n', '== "weekly-plan"\n    assert slugify("Plan: week 1!") '
                 '== "plan-week-1"\n'),
        )),
    ),
    trigger='from notes.text import first_sentence\nfirst_sentence("Call the plumber")\n',
    expected="proved",
    mentions="test_first_sentence_without_period_is_the_whole_text",
    oracle=text("""
        from notes.text import first_sentence


        def test_text_without_a_period_is_one_sentence() -> None:
            assert first_sentence("No period here") == "No period here"
            assert first_sentence("One. Two.") == "One."
    """),
)
# fmt: on

# ---------------------------------------------------------------- (h) no test covers it; the alert has frame vars

_DISTANCE = text('''
    """Distances along delivery routes."""

    import math

    EARTH_RADIUS_KM = 6371.0


    def haversine_km(a: list[float], b: list[float]) -> float:
        lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
        h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


    def route_km(points: list[list[float]]) -> float:
        return sum(haversine_km(a, b) for a, b in zip(points, points[1:]))
''')
_DISTANCE_TESTS = text("""
    from geo.distance import haversine_km, route_km

    PARIS, LYON = [48.8566, 2.3522], [45.764, 4.8357]


    def test_same_point_is_zero() -> None:
        assert haversine_km(PARIS, PARIS) == 0.0


    def test_paris_lyon() -> None:
        assert 390 < haversine_km(PARIS, LYON) < 395


    def test_route_adds_legs() -> None:
        assert route_km([PARIS, LYON, PARIS]) == 2 * haversine_km(PARIS, LYON)
""")
_AVERAGE = text('''


    def average_leg_km(points: list[list[float]]) -> float:
        """Mean length of a route's legs (0 for a route of one stop)."""
        legs = len(points) - 1
        if legs < 1:
            return 0.0
        return route_km(points) / legs
''')

# fmt: off
REPRODUCTION = Scenario(
    name="reproduction",
    letter="h",
    title="no test covers the bug, but the alert carries the failing frame's variables: proved by reproduction",
    steps=(
        Step("import", "Initial import of geo\n", ALICE, "2024-10-07T09:00:00+02:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("geo"), "geo/__init__.py": "",
            "geo/distance.py": _DISTANCE, "tests/test_distance.py": _DISTANCE_TESTS,
        }),
        Step("average", "distance: average leg length for the route report\n", BOB, "2024-10-09T11:00:00+02:00",
             edits=(Edit("geo/distance.py", "points[1:]))\n", "points[1:]))\n" + _AVERAGE),)),
        Step("bug", "distance: simplify average_leg_km\n", CAROL, "2024-10-14T15:45:00+02:00", edits=(
            Edit("geo/distance.py", "    legs = len(points) - 1\n    if legs < 1:\n        return 0.0\n"
                 "    return route_km(points) / legs\n", "    return route_km(points) / (len(points) - 1)\n"),
        )),
        Step("readme", "readme: what the route report shows\n", ALICE, "2024-10-21T10:00:00+02:00", {
            "README.md": "# geo\n\nRoute length and average leg length for the delivery report.\n",
        }),
    ),
    trigger="from geo.distance import average_leg_km\naverage_leg_km([[48.8566, 2.3522]])\n",
    expected="proved",
    frame_vars=True,
    mentions="average_leg_km",
    oracle=text("""
        from geo.distance import average_leg_km


        def test_a_single_stop_has_no_legs() -> None:
            assert average_leg_km([[1.0, 2.0]]) == 0.0


        def test_two_stops_make_one_leg() -> None:
            assert 110 < average_leg_km([[0.0, 0.0], [0.0, 1.0]]) < 112
    """),
)
# fmt: on

# ---------------------------------------------------------------- (i) no test covers it and nothing else proves it

_STATS = text('''
    """Summary statistics for dashboards."""


    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None


    def percentile(values: list[float], p: float) -> float | None:
        """The `p`th percentile by nearest rank (None for no values)."""
        if not values:
            return None
        ordered = sorted(values)
        k = round((len(ordered) - 1) * p / 100)
        return ordered[k]
''')
_STATS_TESTS = text("""
    from metrics.stats import mean, percentile


    def test_mean() -> None:
        assert mean([1, 2, 3]) == 2
        assert mean([]) is None


    def test_percentile_by_nearest_rank() -> None:
        assert percentile(list(range(1, 11)), 50) == 5
        assert percentile([3, 1, 2], 100) == 3
""")

# fmt: off
UNCOVERED = Scenario(
    name="uncovered",
    letter="i",
    title="no test covers the bug and the alert has no variables: the revert is unproven and waits for a person",
    steps=(
        Step("import", "Initial import of metrics\n", ALICE, "2024-11-04T09:00:00+01:00", {
            ".gitignore": GITIGNORE, "pyproject.toml": pyproject("metrics"), "metrics/__init__.py": "",
            "metrics/stats.py": _STATS, "tests/test_stats.py": _STATS_TESTS,
        }),
        Step("median", "stats: median for the latency panel\n", BOB, "2024-11-06T13:00:00+01:00", edits=(
            Edit("metrics/stats.py", "    return ordered[k]\n", "    return ordered[k]\n\n\ndef median(values: list["
                 "float]) -> float | None:\n    return percentile(values, 50)\n"),
        )),
        Step("bug", "stats: percentile without the empty check\n\nEvery caller passes a non-empty window.\n", CAROL,
             "2024-11-12T09:30:00+01:00", edits=(
            Edit("metrics/stats.py", "    if not values:\n        return None\n    ordered", "    ordered"),
        )),
        Step("readme", "readme: which panels use which statistic\n", DAN, "2024-11-18T16:00:00+01:00", {
            "README.md": "# metrics\n\nLatency panels show the median and the 95th percentile.\n",
        }),
    ),
    trigger="from metrics.stats import percentile\npercentile([], 95)\n",
    expected="unproven",
    oracle=text("""
        from metrics.stats import median, percentile


        def test_no_values_have_no_percentile() -> None:
            assert percentile([], 95) is None
            assert median([]) is None
    """),
)
# fmt: on

"""The knowledge folder: frontmatter parsing, `file:line: field: message` errors (the file skipped, nothing else
lost), kinds by field or folder, runbook `alerts:` matching, the in-memory knowledge base, and `config check`."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pagerpatch.cli import app
from pagerpatch.knowledge import KnowledgeEntry, MemoryKnowledge, load_folder
from pagerpatch.knowledge.match import matching_pattern, parse_pattern

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "knowledge"
DEMO_TITLE = "KeyError in checkout: POST /checkout returning 500"
DEMO_LABELS = {"service": "checkout", "env": "production", "team": "payments", "endpoint": "POST /checkout"}


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


GOOD = """
---
keyword: {keyword}
description: A good entry
tags: [a, b]
---
# Body
text
"""


# ---------------------------------------------------------------- parsing
def test_the_shipped_example_loads_one_entry_of_each_kind_and_matches_the_demo_alert() -> None:
    loaded = load_folder(EXAMPLES)
    assert loaded.errors == []
    assert [(e.kind, e.keyword) for e in loaded.entries] == [
        ("guideline", "investigation-basics"),
        ("knowledge", "shopcart-pricing"),
        ("runbook", "checkout-coupon-keyerror"),
    ]  # the README is not an entry
    runbook = loaded.entries[2]
    assert runbook.path == "runbooks/checkout-coupon-keyerror.md" and runbook.body.startswith("# KeyError on POST")
    assert matching_pattern(runbook.alerts, DEMO_TITLE, DEMO_LABELS) == "*KeyError*checkout* && service=checkout"


def test_kind_comes_from_the_field_or_the_folder(tmp_path: Path) -> None:
    write(tmp_path, "runbooks/a.md", GOOD.format(keyword="by-folder"))
    write(tmp_path, "misc/b.md", GOOD.format(keyword="by-field").replace("tags:", "kind: knowledge\ntags:"))
    write(tmp_path, "guidelines/c.md", GOOD.format(keyword="both").replace("tags:", "kind: guideline\ntags:"))
    loaded = load_folder(tmp_path)
    assert loaded.errors == []
    assert {e.keyword: e.kind for e in loaded.entries} == {
        "by-folder": "runbook",
        "by-field": "knowledge",
        "both": "guideline",
    }


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("# no frontmatter\n", 1, "frontmatter: missing: the file must start with a '---' line"),
        ("---\nkeyword: x\ndescription: d\n", 1, "frontmatter: no closing '---' line"),
        ("---\nkeyword: ok\ndescription: [unclosed\ntags: []\n---\nbody\n", 4, "frontmatter: invalid YAML"),
        ("---\n- a\n- b\n---\nbody\n", 2, "frontmatter: must be a mapping"),
        ("---\ndescription: d\n---\nbody\n", 1, "keyword: required field missing"),
        ("---\nkeyword: Bad Keyword\ndescription: d\n---\nbody\n", 2, "keyword: String should match pattern"),
        ("---\nkeyword: k\ndescription: d\ntags: [a]\nowner: me\n---\nbody\n", 5, "owner: Extra inputs"),
        ("---\nkeyword: k\ndescription: d\ntags: ok\n---\nbody\n", 4, "tags: Input should be a valid list"),
        (
            "---\nkeyword: k\ndescription: d\nalerts:\n  - '*ok*'\n  - 're:(unclosed'\n---\nbody\n",
            6,
            "alerts[1]: invalid regular expression '(unclosed'",
        ),
        ("---\nkeyword: k\ndescription: d\nkind: playbook\n---\nbody\n", 4, "kind: Input should be 'guideline'"),
        ("---\nkeyword: k\ndescription: d\n---\n\n   \n", 1, "body: empty"),
    ],
)
def test_malformed_files_name_file_line_and_field_and_are_skipped_alone(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    write(tmp_path, "knowledge/fine.md", GOOD.format(keyword="fine"))
    bad = tmp_path / "runbooks" / "bad.md"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(text)
    loaded = load_folder(tmp_path)
    [error] = loaded.errors
    assert error.startswith(f"{bad}:{line}: {message}"), error
    assert [e.keyword for e in loaded.entries] == ["fine"]  # nothing else lost
    assert loaded.paths == ["knowledge/fine.md", "runbooks/bad.md"]


def test_kind_conflicts_missing_kinds_and_duplicate_keywords_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "guidelines/a.md", GOOD.format(keyword="dup"))
    write(tmp_path, "runbooks/b.md", GOOD.format(keyword="dup"))  # later in path order: the one reported
    write(tmp_path, "runbooks/c.md", GOOD.format(keyword="c").replace("tags:", "kind: knowledge\ntags:"))
    write(tmp_path, "top.md", GOOD.format(keyword="top"))
    write(tmp_path, "guidelines/d.md", "---\nkeyword: d\ndescription: d\nalerts: ['*x*']\n---\nbody\n")
    loaded = load_folder(tmp_path)
    assert [e.keyword for e in loaded.entries] == ["dup"]
    assert loaded.errors == [
        f"{tmp_path / 'guidelines/d.md'}:4: alerts: only runbooks match alerts",
        f"{tmp_path / 'runbooks/b.md'}:2: keyword: 'dup' is already defined in guidelines/a.md",
        f"{tmp_path / 'runbooks/c.md'}:4: kind: 'knowledge' but the file is in runbooks/ (kind 'runbook')",
        f"{tmp_path / 'top.md'}:1: kind: missing: set `kind:` (guideline, knowledge, runbook) or put the file in "
        "guidelines/, knowledge/, runbooks/",
    ]


def test_a_missing_folder_is_reported_not_an_error(tmp_path: Path) -> None:
    loaded = load_folder(tmp_path / "nope")
    assert loaded.missing and loaded.entries == [] and loaded.errors == []


# ---------------------------------------------------------------- alert patterns
@pytest.mark.parametrize(
    ("pattern", "title", "labels", "hit"),
    [
        ("*keyerror*", DEMO_TITLE, {}, True),  # title globs ignore case
        ("KeyError", DEMO_TITLE, {}, False),  # a glob matches the whole title
        ("title:*POST /checkout*", DEMO_TITLE, {}, True),
        ("re:keyerror in (checkout|cart)", DEMO_TITLE, {}, True),
        ("re:^Latency", DEMO_TITLE, {}, False),
        ("service=checkout", "anything", {"service": "checkout"}, True),
        ("service=Checkout", "anything", {"service": "checkout"}, False),  # label values are case-sensitive
        ("service=check*", "anything", {"service": "checkout"}, True),
        ("service=checkout", "anything", {}, False),
        ("env=~prod(uction)?", "x", {"env": "production"}, True),
        ("env=~prod", "x", {"env": "production"}, False),  # whole value, as in Prometheus
        ("env!=staging", "x", {}, True),
        ("env!=staging", "x", {"env": "staging"}, False),
        ("*KeyError* && service=checkout && env!=staging", DEMO_TITLE, DEMO_LABELS, True),
        ("*KeyError* && service=cart", DEMO_TITLE, DEMO_LABELS, False),
    ],
)
def test_alert_patterns(pattern: str, title: str, labels: dict[str, str], hit: bool) -> None:
    assert (matching_pattern([pattern], title, labels) is not None) is hit


def test_bad_patterns_are_refused_by_the_parser() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        parse_pattern("env=~(")
    with pytest.raises(ValueError, match="empty condition"):
        parse_pattern("*x* && ")


def entry(keyword: str, kind: str = "runbook", alerts: list[str] | None = None, **kw: str) -> KnowledgeEntry:
    return KnowledgeEntry(
        kind=kind,  # type: ignore[arg-type]
        keyword=keyword,
        description=kw.get("description", f"about {keyword}"),
        tags=kw.get("tags", "").split(),
        alerts=alerts or [],
        path=f"{kind}s/{keyword}.md",
        body=kw.get("body", "text\n"),
    )


async def test_memory_knowledge_orders_the_catalog_and_the_most_specific_runbook_first() -> None:
    kb = MemoryKnowledge(
        [
            entry("generic-5xx", alerts=["*returning 500*"]),
            entry("coupon-keyerror", alerts=["*KeyError* && service=checkout && env=production"]),
            entry("cart-keyerror", alerts=["*KeyError* && service=cart"]),
            entry("no-patterns"),
            entry("style", kind="guideline"),
            entry("pricing", kind="knowledge", tags="coupons pricing", body="COUPONS table and find_coupon\n"),
        ]
    )
    assert [e.keyword for e in await kb.catalog()] == [
        "style",
        "pricing",
        "cart-keyerror",
        "coupon-keyerror",
        "generic-5xx",
        "no-patterns",
    ]
    assert [e.keyword for e in await kb.runbooks_for(DEMO_TITLE, DEMO_LABELS)] == ["coupon-keyerror", "generic-5xx"]
    assert await kb.runbooks_for("Disk full on db-1", {"service": "checkout"}) == []
    assert (await kb.get("pricing")) is not None and await kb.get("missing") is None
    assert [e.keyword for e in await kb.search("find_coupon coupons")] == ["pricing", "coupon-keyerror"]
    assert await kb.search("nothing matches this") == []


# ---------------------------------------------------------------- config check
def test_config_check_names_the_tools_and_the_knowledge_folder_and_fails_on_a_malformed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "kb"
    shutil.copytree(EXAMPLES, folder)
    monkeypatch.chdir(ROOT)  # config/ is the shipped governance
    env = {"PAGERPATCH_KNOWLEDGE__DIR": str(folder), "PAGERPATCH_OBSERVABILITY__LOKI_URL": "http://loki:3100"}
    ok = CliRunner().invoke(app, ["config", "check"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "observability: prometheus_query off (observability.prometheus_url not set" in ok.output
    assert "observability: loki_query on (http://loki:3100, no token)" in ok.output
    assert f"knowledge: on ({folder}): 1 guideline(s), 1 knowledge, 1 runbook(s)" in ok.output

    bad = folder / "runbooks" / "checkout-coupon-keyerror.md"
    bad.write_text(bad.read_text().replace("keyword: checkout-coupon-keyerror", "keyword: Not A Keyword"))
    failed = CliRunner().invoke(app, ["config", "check"], env=env)
    assert failed.exit_code == 1
    assert f"{bad}:2: keyword: String should match pattern" in " ".join(failed.output.split())

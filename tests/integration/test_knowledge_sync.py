"""The knowledge base on a real Postgres: sync (only what changed; removed files deleted; a malformed file skipped
with its last good version kept), full-text search, runbook matching, and `pagerpatch knowledge list|show|sync`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import Result

from pagerpatch.kernel import store
from pagerpatch.knowledge import KnowledgeBase, sync_knowledge
from pagerpatch.settings import Settings
from pagerpatch.settings.knowledge import KnowledgeSettings
from services.diagnosis import app as diagnosis_app
from tests.support.cli import run_cli
from tests.support.llm_env import llm_settings

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "knowledge"
SHIPPED = EXAMPLES.parents[1] / "config"
DEMO_TITLE = "KeyError in checkout: POST /checkout returning 500"
DEMO_LABELS = {"service": "checkout", "env": "production", "team": "payments"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "knowledge"
    shutil.copytree(EXAMPLES, dest)
    return dest


def settings_for(folder: Path) -> Settings:
    return Settings(knowledge={"dir": folder})


async def test_sync_indexes_the_folder_and_the_knowledge_base_reads_and_searches_it(
    pool: asyncpg.Pool, folder: Path
) -> None:
    result = await sync_knowledge(pool, settings_for(folder))
    assert result.errors == [] and not result.missing
    assert sorted(result.added) == ["checkout-coupon-keyerror", "investigation-basics", "shopcart-pricing"]
    kb = KnowledgeBase(pool)
    assert [(e.kind, e.keyword) for e in await kb.catalog()] == [
        ("guideline", "investigation-basics"),
        ("knowledge", "shopcart-pricing"),
        ("runbook", "checkout-coupon-keyerror"),
    ]
    runbook = await kb.get("checkout-coupon-keyerror")
    assert runbook is not None and runbook.path == "runbooks/checkout-coupon-keyerror.md"
    assert runbook.tags == ["checkout", "coupons", "keyerror", "5xx"]
    assert runbook.alerts == ["*KeyError*checkout* && service=checkout", "re:KeyError.*POST /checkout"]
    assert "COUPONS[code]" in runbook.body and not runbook.body.startswith("---")
    assert [e.keyword for e in await kb.runbooks_for(DEMO_TITLE, DEMO_LABELS)] == ["checkout-coupon-keyerror"]
    assert await kb.runbooks_for("Disk almost full on db-1", {"service": "postgres"}) == []
    assert await kb.get("nope") is None

    # Postgres full-text search: stemming (coupons ~ coupon), keyword and tags weigh most, phrases, exclusions.
    assert [e.keyword for e in await kb.search("coupons normalized")] == ["shopcart-pricing"]
    assert [e.keyword for e in await kb.search("sales tax region")] == ["shopcart-pricing"]
    assert [e.keyword for e in await kb.search("keyerror", limit=1)] == ["checkout-coupon-keyerror"]
    assert [e.keyword for e in await kb.search('"smallest fix"')] == ["investigation-basics"]
    assert {e.keyword for e in await kb.search("coupon")} == {
        "checkout-coupon-keyerror",
        "shopcart-pricing",
        "investigation-basics",
    }
    assert {e.keyword for e in await kb.search("coupon -runbook")} == {"shopcart-pricing", "investigation-basics"}
    # No entry has every word: entries with any of them, best first.
    assert [e.keyword for e in await kb.search("rollback mitigation zebra")] == ["checkout-coupon-keyerror"]
    assert await kb.search("   ") == [] and await kb.search("zebra unicorn") == []


async def test_resync_changes_only_what_changed_and_a_bad_edit_loses_nothing(pool: asyncpg.Pool, folder: Path) -> None:
    s = settings_for(folder)
    await sync_knowledge(pool, s)
    again = await sync_knowledge(pool, s)
    assert (again.added, again.updated, again.removed, again.unchanged, again.changed) == ([], [], [], 3, False)

    pricing = folder / "knowledge" / "shopcart-pricing.md"
    pricing.write_text(pricing.read_text().replace("normalized code", "normalized code (TAXFREE is special)"))
    (folder / "guidelines" / "investigation.md").unlink()
    runbook = folder / "runbooks" / "checkout-coupon-keyerror.md"
    good_runbook = runbook.read_text()
    runbook.write_text(good_runbook.replace("tags: [checkout", "tags: [checkout\n  oops: ["))  # broken YAML
    (folder / "runbooks" / "latency.md").write_text(
        "---\nkeyword: checkout-latency\ndescription: Slow checkout\nalerts: ['*latency* && service=checkout']\n"
        "---\nCheck the database pool first.\n"
    )
    result = await sync_knowledge(pool, s)
    assert (result.added, result.updated, result.removed) == (["checkout-latency"], ["shopcart-pricing"], [
        "investigation-basics"
    ])  # fmt: skip
    [error] = result.errors
    assert error.startswith(f"{runbook}:5: frontmatter: invalid YAML")  # the line of the stray ':'
    kb = KnowledgeBase(pool)
    assert [e.keyword for e in await kb.search("TAXFREE")] == ["shopcart-pricing"]
    assert await kb.get("investigation-basics") is None
    kept = await kb.get("checkout-coupon-keyerror")  # the malformed file's last good version stays
    assert kept is not None and kept.alerts[0] == "*KeyError*checkout* && service=checkout"
    assert [e.keyword for e in await kb.runbooks_for("p99 latency above 2s", {"service": "checkout"})] == [
        "checkout-latency"
    ]

    # The file fixed under another keyword: the old keyword goes, the new one comes.
    runbook.write_text(good_runbook.replace("keyword: checkout-coupon-keyerror", "keyword: coupon-keyerror"))
    renamed = await sync_knowledge(pool, s)
    assert (renamed.added, renamed.removed, renamed.errors) == (["coupon-keyerror"], ["checkout-coupon-keyerror"], [])
    # A removed folder changes nothing (a wrong path must not empty the index).
    shutil.rmtree(folder)
    gone = await sync_knowledge(pool, s)
    assert gone.missing and not gone.changed
    assert len(await kb.catalog()) == 3


async def test_concurrent_syncs_index_each_entry_once(pool: asyncpg.Pool, folder: Path) -> None:
    results = await asyncio.gather(*(sync_knowledge(pool, settings_for(folder)) for _ in range(3)))
    assert sorted(len(r.added) for r in results) == [0, 0, 3]
    assert await pool.fetchval("SELECT count(*) FROM knowledge_entries") == 3


async def test_the_diagnosis_service_indexes_the_folder_at_start_up_unless_told_not_to(
    pool: asyncpg.Pool, folder: Path, tmp_path: Path
) -> None:
    base = llm_settings("http://127.0.0.1:9", SHIPPED)  # a model configured (never called here)
    on = base.model_copy(update={"home": tmp_path / "home", "knowledge": KnowledgeSettings(dir=folder)})
    deps = await diagnosis_app.bootstrap(on, pool)
    assert deps.investigator is not None
    assert await pool.fetchval("SELECT count(*) FROM knowledge_entries") == 3  # before any incident

    await pool.execute("DELETE FROM knowledge_entries")
    off = on.model_copy(update={"knowledge": KnowledgeSettings(dir=folder, sync_on_start=False)})
    deps = await diagnosis_app.bootstrap(off, pool)
    assert deps.investigator is not None
    assert await deps.investigator.knowledge.catalog() == []  # the index as `knowledge sync` left it
    assert await pool.fetchval("SELECT count(*) FROM knowledge_entries") == 0


# ---------------------------------------------------------------- the CLI
@pytest.fixture
async def db_url(fresh_db: str) -> AsyncIterator[str]:
    await store.migrate(fresh_db)
    yield fresh_db


async def invoke(url: str, home: Path, folder: Path, *args: str) -> Result:
    env = {"PAGERPATCH_KNOWLEDGE__DIR": str(folder)}
    return await run_cli("knowledge", *args, home=home, database_url=url, env=env)


async def test_cli_sync_list_show(db_url: str, folder: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = await invoke(db_url, home, folder, "list")
    assert empty.exit_code == 0 and "no knowledge entries indexed: run `pagerpatch knowledge sync`" in empty.output

    synced = await invoke(db_url, home, folder, "sync")
    assert synced.exit_code == 0, synced.output
    assert "knowledge: 3 added, 0 updated, 0 removed, 0 unchanged, 0 file(s) skipped" in synced.output

    listed = await invoke(db_url, home, folder, "list")
    assert listed.exit_code == 0
    rows = [line for line in listed.output.splitlines() if "investigation-basics" in line or "coupon-keyerror" in line]
    assert len(rows) == 2 and "guideline" in rows[0] and "runbook" in rows[1]  # guidelines first
    only = await invoke(db_url, home, folder, "list", "--kind", "runbook")
    assert "checkout-coupon-keyerror" in only.output and "investigation-basics" not in only.output
    wrong_kind = await invoke(db_url, home, folder, "list", "--kind", "playbook")
    assert wrong_kind.exit_code == 2

    shown = await invoke(db_url, home, folder, "show", "checkout-coupon-keyerror")
    assert shown.exit_code == 0
    assert shown.output.startswith("runbook: checkout-coupon-keyerror\ndescription: Runbook for KeyError 500s")
    assert "alerts: re:KeyError.*POST /checkout" in shown.output and "# KeyError on POST /checkout" in shown.output
    missing = await invoke(db_url, home, folder, "show", "nope")
    assert missing.exit_code == 1 and "no knowledge entry 'nope'" in missing.output

    (folder / "knowledge" / "broken.md").write_text("---\nkeyword: broken\n---\nbody\n")
    partly = await invoke(db_url, home, folder, "sync")
    assert partly.exit_code == 1  # a skipped file fails the command, the rest is still indexed
    assert f"{folder / 'knowledge' / 'broken.md'}:1: description: required field missing" in partly.output
    assert "0 added, 0 updated, 0 removed, 3 unchanged, 1 file(s) skipped" in partly.output


async def test_cli_without_a_database_exits_1(folder: Path, tmp_path: Path) -> None:
    result = await run_cli("knowledge", "sync", home=tmp_path, env={"PAGERPATCH_KNOWLEDGE__DIR": str(folder)})
    assert result.exit_code == 1 and "no pagerpatch stack is running" in result.output

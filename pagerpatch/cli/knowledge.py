"""`pagerpatch knowledge list|show|sync`: the knowledge base the investigation agent reads (docs/knowledge.md).

`sync` indexes the folder (`knowledge.dir`) into the running system's database; `list` and `show` read the index.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pagerpatch.cli.app import console, current_settings, err, with_db

knowledge_app = typer.Typer(help="The knowledge base: guidelines, knowledge and runbooks.", no_args_is_help=True)


@knowledge_app.command("list")
def knowledge_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind: guideline, knowledge or runbook.")] = None,
) -> None:
    """The indexed entries: guidelines first, then knowledge, then runbooks."""
    from pagerpatch.knowledge import KINDS, KnowledgeBase

    if kind is not None and kind not in KINDS:
        err.print(f"unknown kind {kind!r}: use {', '.join(KINDS)}", markup=False)
        raise typer.Exit(2)
    settings = current_settings()
    entries = with_db(settings, lambda conn: KnowledgeBase(conn).catalog())
    entries = [e for e in entries if kind is None or e.kind == kind]
    if not entries:
        err.print("no knowledge entries indexed: run `pagerpatch knowledge sync`", markup=False)
        return
    table = Table("kind", "keyword", "description", "tags", "alerts")
    for e in entries:
        table.add_row(*(escape(c) for c in (e.kind, e.keyword, e.description, ", ".join(e.tags), "\n".join(e.alerts))))
    console.print(table)


@knowledge_app.command("show")
def knowledge_show(keyword: Annotated[str, typer.Argument(help="The entry's keyword.")]) -> None:
    """One entry: its frontmatter and its Markdown."""
    from pagerpatch.knowledge import KnowledgeBase

    settings = current_settings()
    entry = with_db(settings, lambda conn: KnowledgeBase(conn).get(keyword))
    if entry is None:
        err.print(f"no knowledge entry {keyword!r} (see `pagerpatch knowledge list`)", markup=False)
        raise typer.Exit(1)
    head = [f"{entry.kind}: {entry.keyword}", f"description: {entry.description}", f"path: {entry.path}"]
    if entry.tags:
        head.append(f"tags: {', '.join(entry.tags)}")
    head += [f"alerts: {a}" for a in entry.alerts]
    console.print("\n".join(head) + "\n\n" + entry.body.rstrip(), soft_wrap=True, markup=False, highlight=False)


@knowledge_app.command("sync")
def knowledge_sync(
    folder: Annotated[
        str | None,
        typer.Option("--dir", help="Index this folder instead of knowledge.dir (PAGERPATCH_KNOWLEDGE__DIR)."),
    ] = None,
) -> None:
    """Index the Markdown files (changed ones re-indexed, removed ones deleted); a malformed file is reported
    as file:line: field: message and skipped, the rest is indexed, and the exit code is 1."""
    from pathlib import Path

    from pagerpatch.knowledge import sync_knowledge

    settings = current_settings()
    result = with_db(settings, lambda conn: sync_knowledge(conn, settings, Path(folder) if folder else None))
    for problem in result.errors:
        err.print(f"error: {problem}", soft_wrap=True, markup=False, style="red")
    for label, names in (("added", result.added), ("updated", result.updated), ("removed", result.removed)):
        if names:
            console.print(f"  {label}: {', '.join(names)}", soft_wrap=True, markup=False)
    (err if result.missing else console).print(result.summary(), soft_wrap=True, markup=False)
    if result.errors or result.missing:
        raise typer.Exit(1)

"""Command groups contributed by installed packages through the `pagerpatch.commands` entry point.

A stage adds its own commands this way (triage's `eval`), so the CLI never imports a service and works without
the services installed. One broken plugin is reported on stderr and skipped: it must not take every command down.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

import typer

ENTRY_POINT_GROUP = "pagerpatch.commands"


def command_names(app: typer.Typer) -> set[str]:
    """Names already taken on `app`: its commands and its sub-groups."""
    names = {g.name for g in app.registered_groups if g.name}
    for c in app.registered_commands:
        name = c.name or (c.callback.__name__.replace("_", "-") if c.callback else None)
        if name:
            names.add(name)
    return names


def plugin_group(ep: EntryPoint, taken: set[str]) -> tuple[typer.Typer | None, str]:
    """Load one entry point: the group to add, or None and why it is skipped."""
    if ep.name in taken:
        return None, f"command group {ep.name!r} ({ep.value}) clashes with a built-in command; skipped"
    try:
        group = ep.load()
    except Exception as exc:  # any import-time failure of someone else's package: report it and go on
        return None, f"command group {ep.name!r} ({ep.value}) could not be loaded: {type(exc).__name__}: {exc}"
    if not isinstance(group, typer.Typer):
        return None, f"command group {ep.name!r} ({ep.value}) is a {type(group).__name__}, not a typer.Typer; skipped"
    return group, ""


def add_plugin_groups(
    app: typer.Typer,
    report: Callable[[str], None],
    found: Callable[[], list[EntryPoint]] | None = None,
) -> list[str]:
    """Add every `pagerpatch.commands` entry point to `app` under its name (sorted, so help reads the same
    everywhere); returns the names added. `found` replaces the installed entry points (tests)."""
    eps = found() if found is not None else list(entry_points(group=ENTRY_POINT_GROUP))
    taken = command_names(app)
    added: list[str] = []
    for ep in sorted(eps, key=lambda e: e.name):
        group, problem = plugin_group(ep, taken)
        if group is None:
            report(problem)
            continue
        app.add_typer(group, name=ep.name)
        taken.add(ep.name)
        added.append(ep.name)
    return added

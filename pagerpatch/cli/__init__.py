"""The `pagerpatch` command line: one module per command group, assembled here in the order `--help` lists them.

Groups a stage owns come from the `pagerpatch.commands` entry point (see plugins.py), never from an import here.
"""

from __future__ import annotations

import sys

from pagerpatch.cli import bus, config, eval_fixes, export, incidents, plugins, repos, stack
from pagerpatch.cli.app import app
from pagerpatch.cli.knowledge import knowledge_app
from pagerpatch.cli.replay import replay as replay_incident

__all__ = ["app", "main"]

# Registration order is the order `pagerpatch --help` shows: commands first, then the groups.
app.command()(stack.up)
app.command()(incidents.send)
app.command()(incidents.approve)
app.command()(incidents.reject)
app.command()(stack.demo)
app.command("replay")(replay_incident)
app.add_typer(repos.repos_app, name="repos")
app.add_typer(bus.bus_app, name="bus")
app.add_typer(bus.db_app, name="db")
app.add_typer(bus.events_app, name="events")
app.add_typer(bus.dlq_app, name="dlq")
app.add_typer(incidents.incidents_app, name="incidents")
app.add_typer(config.config_app, name="config")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(export.export_app, name="export")
plugins.add_plugin_groups(app, report=lambda problem: print(f"pagerpatch: {problem}", file=sys.stderr))
eval_fixes.register(app)  # `eval fixes`, into the `eval` group a plugin may have added


def main() -> None:
    """The `pagerpatch` script (pyproject.toml) and `python -m pagerpatch.cli`."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

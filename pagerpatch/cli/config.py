"""`pagerpatch config check`: the settings and the agent runtime's governance files, validated before a start."""

from __future__ import annotations

import typer

from pagerpatch.cli.app import console, err

config_app = typer.Typer(help="Configuration.", no_args_is_help=True)


@config_app.command("check")
def config_check() -> None:
    """Validate settings, tools.yaml, agents.yaml, policies.yaml and prompt files (exit 1 naming file:line:field)."""
    from pagerpatch.llm.check import check_config

    report = check_config()
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    if not report.ok:
        for error in report.errors:
            err.print(f"[red]error:[/red] {error}", soft_wrap=True)
        err.print(f"[red]configuration invalid: {len(report.errors)} error(s)[/red]")
        raise typer.Exit(1)
    for line in report.summary:
        console.print(line, soft_wrap=True)
    console.print("configuration ok")

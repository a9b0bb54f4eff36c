"""`pagerpatch config check`: the settings and the agent runtime's governance files, validated before a start."""

from __future__ import annotations

import typer

from pagerpatch.cli.app import console, err

config_app = typer.Typer(help="Configuration.", no_args_is_help=True)


@config_app.command("check")
def config_check() -> None:
    """Validate settings, tools.yaml, agents.yaml, policies.yaml and prompt files (exit 1 naming file:line:field)."""
    from pagerpatch.knowledge.check import check_knowledge
    from pagerpatch.llm.check import check_config

    report = check_config()
    check_knowledge(report)  # observability tools on/off, knowledge files (file:line: field: message)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    if not report.ok:
        for error in report.errors:
            err.print(f"[red]error:[/red] {error}", soft_wrap=True)
        err.print(f"[red]configuration invalid: {len(report.errors)} error(s)[/red]")
        raise typer.Exit(1)
    for line in report.summary:
        console.print(line, soft_wrap=True)
    _print_integrations()
    console.print("configuration ok")


def _print_integrations() -> None:
    """Which of GitHub, Slack and Linear is on (settings already validated by `check_config`)."""
    from pagerpatch.settings import load_settings
    from pagerpatch.settings.integrations import describe_integrations

    s = load_settings()
    for line in describe_integrations(s.github, s.slack, s.linear):
        console.print(f"integrations: {line}", soft_wrap=True)
    for repo in s.repos:
        if repo.github is not None:
            target = f"github {repo.github.repo} (base {repo.github.base or repo.default_branch})"
            where = target if s.github.enabled else f"{target} configured, but GitHub is off: local git remote"
            console.print(f"repo {repo.name}: pull requests -> {where}", soft_wrap=True)

"""`pagerpatch up` and `pagerpatch demo`: the whole system in this process tree (the demo starts one if none runs)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from pagerpatch.cli.app import current_settings


def up(
    services: Annotated[
        str, typer.Option(help="Comma-separated services to run (default: all six and the web console).")
    ] = "ingest,triage,diagnosis,fixgen,review,notifier,console",
) -> None:
    """Start everything: embedded NATS and Postgres if needed, bus set-up, migrations, all services."""
    from pagerpatch.ops.runner import run_up

    settings = current_settings()
    names = [s.strip() for s in services.split(",") if s.strip()]
    raise typer.Exit(asyncio.run(run_up(settings, names)))


def demo(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pull request.")] = 180.0,
) -> None:
    """Run the shipped scenario end to end: a regression, its alert, and the pull request that fixes it."""
    from pagerpatch.ops.demo import run_demo

    settings = current_settings()
    raise typer.Exit(asyncio.run(run_demo(settings, timeout_s=timeout)))

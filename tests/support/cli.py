"""Running the `pagerpatch` CLI in-process from an async test, against a given database, NATS and home."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

from pagerpatch import cli


async def run_cli(
    *args: str,
    home: Path,
    database_url: str | None = None,
    nats_url: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Result:
    """`pagerpatch <args>` in a worker thread (it runs its own event loop); an unset URL is removed from the
    environment, `env` adds or overrides variables, and the terminal is 200 columns wide unless `env` says so."""
    given = {"DATABASE_URL": database_url, "NATS_URL": nats_url, "PAGERPATCH_HOME": str(home), "COLUMNS": "200"}
    return await asyncio.to_thread(CliRunner().invoke, cli.app, list(args), env={**given, **(env or {})})

"""`pagerpatch repos add/list`: the repositories pagerpatch may diagnose and patch, from config and registered.

`add` checks what would otherwise fail later, one alert at a time: the default branch must exist, and with
`--check-tests` the test command must run at it (its result is reported as the baseline fixes are compared with).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pagerpatch.cli.app import console, current_settings, database_url, err, with_db
from pagerpatch.settings import RepoConfig

repos_app = typer.Typer(help="Repositories pagerpatch may diagnose and patch.", no_args_is_help=True)

BRANCHES_SHOWN = 10
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:org/repo.git


def location_fields(location: str) -> dict[str, str]:
    """`--path` as the config key it is: a clone URL goes to `url` (cloned as given), anything else to `path`."""
    return {"url": location} if "://" in location or _SCP_LIKE.match(location) else {"path": location}


def missing_branch(branch: str, branches: Sequence[str], location: str) -> str | None:
    """Why `branch` cannot be the default branch (it is not one of `branches`), or None when it exists."""
    if branch in branches:
        return None
    if not branches:
        return f"branch {branch!r} does not exist in {location}; it has no branches (no commit yet?)"
    shown = ", ".join(branches[:BRANCHES_SHOWN]) + (", ..." if len(branches) > BRANCHES_SHOWN else "")
    return f"branch {branch!r} does not exist in {location}; branches: {shown}"


@repos_app.command("add")
def repos_add(
    name: Annotated[str, typer.Argument(help="Repository name (letters, digits, . _ -).")],
    path: Annotated[str, typer.Option(help="Local path or clone URL of the repository.")],
    service: Annotated[list[str] | None, typer.Option(help="A service this repository serves (repeatable).")] = None,
    test_command: Annotated[str, typer.Option(help="The repository's test command.")] = "python -m pytest -q",
    default_branch: Annotated[str, typer.Option(help="Default branch (must exist in the repository).")] = "main",
    setup_command: Annotated[
        str | None,
        typer.Option(
            help="Installs the repository's dependencies into its own environment, once per dependency-"
            "file hash (e.g. 'pip install -e .[test]', 'uv sync')."
        ),
    ] = None,
    setup_network: Annotated[
        bool, typer.Option(help="Give the set-up command network access (the tests never get it).")
    ] = False,
    test_timeout_s: Annotated[
        float | None, typer.Option(help="This repository's test time limit in seconds (default: sandbox.timeout_s).")
    ] = None,
    check_tests: Annotated[
        bool, typer.Option(help="Run the test command at the default branch in the sandbox and report the baseline.")
    ] = False,
) -> None:
    """Register a repository at run time (config `repos:` entries take precedence on a name clash)."""
    from pydantic import ValidationError

    from pagerpatch.git import repos
    from pagerpatch.git.workspace import GitError

    try:
        repo = RepoConfig(name=name, **location_fields(path), services=service or [], test_command=test_command,
                          default_branch=default_branch, setup_command=setup_command, setup_network=setup_network,
                          test_timeout_s=test_timeout_s)  # fmt: skip
    except ValidationError as exc:
        err.print(f"[red]invalid repository: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from None
    settings = current_settings()
    database_url(settings)  # nothing to register into: say so before the checks, which may take minutes
    try:
        problem = missing_branch(default_branch, repos.branches(repo), path)
    except GitError as exc:
        problem = f"cannot list the branches of {path}: {exc.stderr.splitlines()[0] if exc.stderr else exc}"
    if problem:
        err.print(problem, soft_wrap=True, markup=False)
        raise typer.Exit(2)
    if check_tests:
        from pagerpatch.cli.baseline import check_baseline

        setup = f" after `{setup_command}` (once per dependency-file hash)" if setup_command else ""
        console.print(f"running `{test_command}` at {default_branch} in the sandbox{setup}…", markup=False)
        baseline = asyncio.run(check_baseline(settings, repo))
        for line in baseline.lines:
            (console if baseline.ran else err).print(line, soft_wrap=True, markup=False)
        if not baseline.ran:
            err.print(f"{name} was not registered: fix the set-up or test command, or add it without --check-tests",
                      soft_wrap=True, markup=False)  # fmt: skip
            raise typer.Exit(1)
    with_db(settings, lambda conn: repos.register(conn, repo))
    console.print(f"registered {name}", markup=False)


@repos_app.command("list")
def repos_list() -> None:
    """Repositories from config and those registered at run time."""
    from pagerpatch.git import repos

    settings = current_settings()
    table = Table("name", "location", "branch", "services", "test command", "setup command")
    for r in with_db(settings, lambda conn: repos.all_repos(settings, conn)):
        setup = (r.setup_command or "") + (" (network)" if r.setup_command and r.setup_network else "")
        cells = (r.name, r.path or r.url or "", r.default_branch, ",".join(r.services), r.test_command, setup)
        table.add_row(*(escape(c) for c in cells))  # commands hold brackets (`.[test]`), which are not markup
    console.print(table)

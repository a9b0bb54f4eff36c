"""The CLI's assembly: built-in groups in their order, stage groups from the `pagerpatch.commands` entry point,
and a broken plugin reported on stderr without taking the other commands down."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import typer
from typer.testing import CliRunner

from pagerpatch import cli
from pagerpatch.cli.plugins import ENTRY_POINT_GROUP, add_plugin_groups

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

GOOD = typer.Typer(help="A well-behaved plugin.", no_args_is_help=True)
NOT_A_TYPER = object()


@GOOD.command("hello")
def hello() -> None:
    typer.echo("hello from a plugin")


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_top_level_help_lists_the_commands_and_groups_in_their_order() -> None:
    result = runner.invoke(cli.app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    names = [line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and "--" not in line]
    assert names == ["up", "send", "approve", "reject", "demo", "replay", "repos", "bus", "db", "events", "dlq",
                     "incidents", "config", "knowledge", "export", "eval"]  # fmt: skip


def test_the_installed_entry_point_contributes_triage_eval() -> None:
    result = runner.invoke(cli.app, ["eval", "triage", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Replay a labelled alert dataset through triage" in result.output
    assert "--min-severity-accuracy" in result.output


def test_a_broken_plugin_is_reported_and_the_others_still_load() -> None:
    app = typer.Typer(no_args_is_help=True)
    app.command()(hello)
    problems: list[str] = []
    found = [
        entry("zeta", "nowhere_at_all.cli:app"),
        entry("alpha", f"{__name__}:GOOD"),
        entry("thing", f"{__name__}:NOT_A_TYPER"),
        entry("hello", f"{__name__}:GOOD"),
    ]
    added = add_plugin_groups(app, problems.append, found=lambda: found)

    assert added == ["alpha"]
    assert len(problems) == 3
    assert "'hello'" in problems[0] and "clashes with a built-in command" in problems[0]
    assert "'thing'" in problems[1] and "not a typer.Typer" in problems[1]
    assert "'zeta'" in problems[2] and "ModuleNotFoundError" in problems[2]
    result = runner.invoke(app, ["alpha", "hello"])
    assert result.exit_code == 0 and "hello from a plugin" in result.output
    assert runner.invoke(app, ["hello"]).exit_code == 0  # the built-in command kept its name


def test_an_installed_broken_plugin_does_not_break_the_command(tmp_path: Path) -> None:
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = nowhere_at_all.cli:app\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), "COLUMNS": "200"}

    done = subprocess.run([sys.executable, "-m", "pagerpatch.cli", "--help"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "command group 'broken' (nowhere_at_all.cli:app) could not be loaded: ModuleNotFoundError" in done.stderr
    assert " eval " in done.stdout and " up " in done.stdout


def test_the_cli_imports_only_the_plugin_module_of_a_service() -> None:
    """Loading `pagerpatch` stays light: triage's eval engine is imported when `eval triage` runs, not before."""
    code = "import sys, pagerpatch.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'services'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)  # fmt: skip
    assert done.stdout.strip() == "['services', 'services.triage', 'services.triage.cli']"

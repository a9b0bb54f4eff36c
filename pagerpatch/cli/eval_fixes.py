"""`pagerpatch eval fixes`: does the pipeline find the commit that broke a repository, and are its fixes real?

Added to the `eval` command group (the triage stage's plugin when installed, else a group of its own) by
`register`, so the CLI never imports a service. The work is in pagerpatch/ops/fixes_eval/.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from pagerpatch.cli.app import console, current_settings, err

__all__ = ["MIN_SCORE", "MIN_SUSPECT_ACCURACY", "fixes", "register"]

# The floors `eval fixes` exits 1 below (docs/eval-fixes.md): the share of right suspects (every shipped scenario's
# suspect was right when it was set), and the share of scenarios meeting every expectation (`--min`, off unless given).
MIN_SUSPECT_ACCURACY = 1.0
MIN_SCORE = 0.0
EVAL_HELP = "Evaluations on labelled datasets."


def fixes(
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="A scenario to run, by name or letter (repeatable; default: all of them)."),
    ] = None,
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder of scenario files (*.toml, docs/eval-fixes.md) to run instead of the shipped "
            "ones (repeatable).",
            file_okay=False,
        ),
    ] = None,
    with_shipped: Annotated[
        bool, typer.Option("--with-shipped", help="With --dataset, run the shipped scenarios too.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document.")] = False,
    min_score: Annotated[
        float,
        typer.Option(
            "--min",
            help="Exit 1 when the share of scenarios meeting every expectation is below this.",
            min=0.0,
            max=1.0,
        ),
    ] = MIN_SCORE,
    min_suspect_accuracy: Annotated[
        float, typer.Option(help="Exit 1 when the share of right suspects is below this.", min=0.0, max=1.0)
    ] = MIN_SUSPECT_ACCURACY,
    timeout: Annotated[float, typer.Option(help="Seconds each scenario may take in the pipeline.", min=1.0)] = 180.0,
    stack: Annotated[
        bool,
        typer.Option(
            "--stack",
            help="Run the alerts through an embedded stack of their own (NATS, Postgres, every service) instead "
            "of the stages in this process.",
        ),
    ] = False,
) -> None:
    """Run small repositories with known bugs through the pipeline's stages; judge suspects, proofs and PRs.

    Exit 1 below --min or --min-suspect-accuracy, or when any unproven or cosmetic change was approved as LOW
    risk; 2 on a malformed scenario file or an unknown scenario.
    """  # fmt: skip
    # Imported here, not at module import: the CLI loads this module on every command and must stay light.
    from pagerpatch.ops.fixes_eval import catalog, report, runner
    from pagerpatch.ops.fixes_eval.history import BuildError
    from pagerpatch.ops.fixes_eval.spec import ScenarioFileError

    try:
        pool = catalog.datasets(dataset, shipped=with_shipped) if dataset else catalog.SCENARIOS
        chosen = catalog.select(scenario or [], pool)
    except (ScenarioFileError, catalog.UnknownScenario) as exc:
        err.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    settings = current_settings()
    progress = sys.stderr if as_json else sys.stdout  # with --json, stdout carries the document alone

    def say(text: str) -> None:
        print(text, file=progress, flush=True)

    try:
        result = asyncio.run(runner.run_fixes_eval(settings, chosen, timeout_s=timeout, say=say, stack=stack))
    except (runner.EvalError, BuildError) as exc:
        err.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(report.to_json(result, min_suspect_accuracy, min_score), indent=2), flush=True)
    else:
        summary = report.summary_lines(result, min_suspect_accuracy, min_score)
        for line in [*report.table_lines(result), "", *summary]:
            console.print(line, soft_wrap=True, markup=False, highlight=False)
    raise typer.Exit(1 if report.failures(result, min_suspect_accuracy, min_score) else 0)


def register(app: typer.Typer) -> None:
    """Add `fixes` to `app`'s `eval` group (a plugin's, when one was added), creating the group when there is none."""
    group = next((g.typer_instance for g in app.registered_groups if g.name == "eval" and g.typer_instance), None)
    if group is None:
        group = typer.Typer(help=EVAL_HELP, no_args_is_help=True)
        app.add_typer(group, name="eval")
    group.command("fixes")(fixes)

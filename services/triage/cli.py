"""`pagerpatch eval triage`: triage's command group, plugged into the CLI through the `pagerpatch.commands` entry point.

It lives with the stage (not in pagerpatch/cli) so the kernel never imports a service; pyproject.toml declares
`eval = "services.triage.cli:eval_app"`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

eval_app = typer.Typer(help="Evaluations on labelled datasets.", no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

# Floors set from the measured figures on services/triage/data/triage_golden.jsonl (docs/triage.md).
TRIAGE_MIN_ACCURACY = 0.995  # measured 0.996 (944/948): the misses are the five `hard-` cases
TRIAGE_MIN_SEVERITY_ACCURACY = 0.998  # measured 0.999 (684/685)


@eval_app.command("triage")
def eval_triage(
    dataset: Annotated[
        Path | None,
        typer.Option(help="A JSONL dataset (default: the shipped services/triage/data/triage_golden.jsonl)."),
    ] = None,
    min_accuracy: Annotated[
        float, typer.Option(help="Exit 1 when class accuracy is below this.", min=0.0, max=1.0)
    ] = TRIAGE_MIN_ACCURACY,
    min_severity_accuracy: Annotated[
        float, typer.Option(help="Exit 1 when severity accuracy is below this.", min=0.0, max=1.0)
    ] = TRIAGE_MIN_SEVERITY_ACCURACY,
    show: Annotated[int, typer.Option(help="How many wrong decisions to list.")] = 50,
) -> None:
    """Replay a labelled alert dataset through triage (rules only) and print accuracy and the misses."""
    # Imported here, not at module import: the CLI loads this module on every command and must stay light.
    from services.triage import eval as triage_eval

    try:
        cases = triage_eval.load_dataset(dataset or triage_eval.shipped_dataset())
    except triage_eval.DatasetError as exc:
        err.print(f"[red]malformed dataset: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    report = asyncio.run(triage_eval.run(cases))
    for part in triage_eval.render(report, cases, show):
        console.print(part, soft_wrap=isinstance(part, str))
    failed = below_floors(report.class_accuracy, report.severity_accuracy, min_accuracy, min_severity_accuracy)
    if failed:
        err.print("[red]below the floor: " + "; ".join(failed) + "[/red]", soft_wrap=True)
        raise typer.Exit(1)


def below_floors(class_accuracy: float, severity_accuracy: float, min_class: float, min_severity: float) -> list[str]:
    """Which floors a run fell below, worded for the operator (empty: the run passes)."""
    failed = []
    if class_accuracy < min_class:
        failed.append(f"class accuracy {class_accuracy:.3f} < {min_class:.3f}")
    if severity_accuracy < min_severity:
        failed.append(f"severity accuracy {severity_accuracy:.3f} < {min_severity:.3f}")
    return failed

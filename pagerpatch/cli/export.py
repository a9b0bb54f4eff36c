"""`pagerpatch export preferences`: the preference pairs people left at the approval gate, as JSON lines.

Each line: the incident, the outcome (`rejected`, or `approved` as a positive example), the person's reason, who
decided and on which channel, the repository, the fix strategy, the diagnosis and the patch they saw, and the risk
review gave (docs/review.md). The table is written by review in the decision's transaction (migration 0009).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
import typer

from pagerpatch.cli.app import current_settings, err, with_db
from pagerpatch.replay import durable

export_app = typer.Typer(help="Export what pagerpatch learned (preference pairs).", no_args_is_help=True)

_QUERY = """
SELECT incident_id, outcome, reason, decided_by, channel, repo, strategy, diagnosis, patch, risk, decided_at
FROM preferences
WHERE ($1::timestamptz IS NULL OR decided_at >= $1) AND ($2::text IS NULL OR outcome = $2)
ORDER BY decided_at, id
"""


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`7d`, `12h`, `30m`, `2w` (ago), or an ISO date/datetime (UTC when it names no zone)."""
    try:
        return durable.parse_since(value, now or datetime.now(UTC))
    except durable.Refused as exc:
        raise typer.BadParameter(str(exc)) from None


def line_of(row: dict[str, Any]) -> str:
    """One preference pair as one JSON line (stable keys, the incident as a string, times in ISO 8601)."""
    doc = {
        "incident_id": str(row["incident_id"]),
        "decided_at": row["decided_at"].isoformat(),
        "outcome": row["outcome"],
        "reason": row["reason"],
        "decided_by": row["decided_by"],
        "channel": row["channel"],
        "repo": row["repo"],
        "strategy": row["strategy"],
        "diagnosis": row["diagnosis"],
        "patch": row["patch"],
        "risk": row["risk"],
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=False)


@export_app.command("preferences")
def export_preferences(
    fmt: Annotated[str, typer.Option("--format", help="Output format (jsonl).")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    since: Annotated[str | None, typer.Option(help="Only decisions since: an ISO date/datetime or 7d, 12h...")] = None,
    outcome: Annotated[
        Literal["all", "rejected", "approved"] | None, typer.Option(help="Only rejections or only approvals.")
    ] = None,
) -> None:
    """Preference pairs (diagnosis, patch, reason, outcome) from human approve/reject decisions, as JSON lines."""
    if fmt != "jsonl":
        err.print(f"unknown format {fmt!r}: only jsonl is supported", markup=False)
        raise typer.Exit(2)
    since_at = parse_since(since) if since else None
    only = None if outcome in (None, "all") else outcome

    async def fetch(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(_QUERY, since_at, only)]

    rows = with_db(current_settings(), fetch)
    lines = [line_of(r) for r in rows]
    if output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    err.print(f"exported {len(lines)} preference pair(s)" + (f" to {output}" if output else ""), markup=False)

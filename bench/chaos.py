"""Chaos, the long form: N incidents on the demo scenario through `pagerpatch up` while services are SIGKILLed and
Postgres and NATS go away for T seconds each, then both at once; prints what was lost, doubled, dead-lettered and
how fast the pipeline recovered.

    .venv/bin/python bench/chaos.py [--incidents 300] [--rate 6] [--outage 60] [--kills 6]
                                    [--outages postgres,nats,both] [--embedded]

Without --embedded, NATS and Postgres are servers of this script passed to `up` as external URLs (an outage lasts
exactly T seconds). With --embedded, `up` runs its own and they are SIGKILLed: its watchdog restarts them.
The bounded form of the same run is tests/chaos (part of the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.harness import STAGE_EVENTS, Chaos, Plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--rate", type=float, default=6.0, help="alerts per second")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds each server stays away")
    parser.add_argument("--kills", type=int, default=6, help="services SIGKILLed at random")
    parser.add_argument("--outages", default="postgres,nats,both")
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds for every incident to end")
    args = parser.parse_args()
    plan = Plan(
        incidents=args.incidents,
        rate_per_s=args.rate,
        outage_s=args.outage,
        kills=args.kills,
        outages=tuple(o for o in args.outages.split(",") if o),
        embedded=args.embedded,
        settle_s=5.0,
        deadline_s=args.deadline,
    )
    chaos = Chaos(plan)
    try:
        chaos.start()
        figures = asyncio.run(chaos.run())
    finally:
        left = chaos.close()
    print("\n".join(["", "== chaos figures", *figures.lines()]))
    n = plan.incidents
    ok = (
        figures.accepted == n
        and figures.incidents == n
        and figures.dead_letters == 0
        and not figures.server_errors
        and figures.states == {"pr_opened": n}
        and figures.pr_records == n
        and figures.branches == n
        and all(figures.stage_events[k] == {1: n} for k in STAGE_EVENTS)
        and not left
    )
    print("survived: yes" if ok else f"survived: NO (processes left: {left})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

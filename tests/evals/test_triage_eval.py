"""The triage golden eval: the shipped dataset stays above its floor; any file in the format works."""

from __future__ import annotations

import json
import runpy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pagerpatch import cli
from services.triage import eval as triage_eval
from services.triage.cli import TRIAGE_MIN_ACCURACY, TRIAGE_MIN_SEVERITY_ACCURACY

GOLDEN = triage_eval.shipped_dataset()  # package data: services/triage/data/triage_golden.jsonl
runner = CliRunner()


async def test_shipped_dataset_is_above_the_floor() -> None:
    cases = triage_eval.load_dataset(GOLDEN)
    report = await triage_eval.run(cases)
    assert report.class_accuracy >= TRIAGE_MIN_ACCURACY, [o.case_id for o in report.wrong()]
    assert report.severity_accuracy >= TRIAGE_MIN_SEVERITY_ACCURACY, [o.case_id for o in report.wrong()]
    # Only the cases kept as known misses of the rules may be wrong.
    assert {o.case_id for o in report.wrong()} <= {c.case.id for c in cases if c.case.id.startswith("hard-")}


def test_shipped_dataset_covers_providers_classes_and_severities() -> None:
    cases = triage_eval.load_dataset(GOLDEN)
    assert len(cases) >= 120
    sources = {a.event.payload.source for c in cases for a in c.alerts}
    assert sources >= {"generic", "sentry", "alertmanager", "grafana", "sns", "pagerduty", "github"}
    labels = Counter((a.expect.class_, a.expect.severity) for c in cases for a in c.alerts if a.expect)
    for cls in ("real", "duplicate"):
        for sev in ("P0", "P1", "P2", "P3"):
            assert labels[(cls, sev)] > 0, (cls, sev)
    assert sum(n for (cls, _), n in labels.items() if cls == "noise") >= 30
    tags = {t for c in cases for t in c.case.tags}
    assert tags >= {"flapping", "storm", "resolution", "replicas", "unrelated", "maintenance", "spike",
                    "insufficient_data", "known_noise", "open_after"}  # fmt: skip


def test_the_generator_reproduces_the_shipped_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = runpy.run_path(str(Path(__file__).with_name("make_triage_golden.py")), run_name="golden")
    out = tmp_path / "golden.jsonl"
    module["main"].__globals__["OUT"] = out
    module["main"]()
    assert out.read_text() == GOLDEN.read_text(), "re-run tests/evals/make_triage_golden.py and commit the result"


def write(tmp_path: Path, cases: list[dict[str, Any]] | list[str]) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(c if isinstance(c, str) else json.dumps(c) for c in cases) + "\n")
    return path


SMALL = [
    {"id": "storm", "alerts": [
        {"t": 0, "alert": {"source": "generic", "service": "api", "title": "db down", "severity_hint": "p1"},
         "expect": {"class": "real", "severity": "P1"}},
        {"t": 5, "repeat": 10, "every": 1,
         "alert": {"source": "generic", "service": "api", "title": "db down", "severity_hint": "p1"},
         "expect": {"class": "duplicate", "severity": "P1"}}]},
    {"id": "maintenance", "config": {"triage": {"maintenance": [
        {"name": "m", "service": "api", "starts_at": "2024-06-03T11:00:00Z", "ends_at": "2024-06-03T13:00:00Z"}]}},
     "alerts": [{"t": 0, "alert": {"source": "generic", "service": "api", "title": "db down"},
                 "expect": {"class": "noise"}}]},
    {"id": "tier", "config": {"service_catalog": {"api": {"tier": 0}}},
     "alerts": [{"t": 0, "alert": {"source": "sentry", "service": "api", "title": "boom", "severity_hint": "error",
                                   "kind": "error"}, "expect": {"class": "real", "severity": "P1"}}]},
]  # fmt: skip


def test_cli_runs_any_dataset_in_the_format(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["eval", "triage", "--dataset", str(write(tmp_path, SMALL))])
    assert result.exit_code == 0, result.output
    assert "3 cases, 13 alerts, 13 labelled" in result.output
    assert "class accuracy    1.000" in result.output and "no wrong decisions" in result.output
    assert "confusion matrix" in result.output


def test_cli_fails_below_the_floor_and_lists_the_wrong_case(tmp_path: Path) -> None:
    wrong = json.loads(json.dumps(SMALL))
    wrong[1]["alerts"][0]["expect"] = {"class": "real"}  # mislabelled on purpose
    path = write(tmp_path, wrong)
    result = runner.invoke(cli.app, ["eval", "triage", "--dataset", str(path)])
    assert result.exit_code == 1
    assert "maintenance (line 2, alert #0): expected real, got noise" in result.output
    assert "below the floor" in result.output
    lenient = runner.invoke(cli.app, ["eval", "triage", "--dataset", str(path), "--min-accuracy", "0.5"])
    assert lenient.exit_code == 0, lenient.output


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([json.dumps(SMALL[0]), "", "{not json"], "mine.jsonl:3: invalid JSON"),
        ([json.dumps({**SMALL[0], "alerts": [{"t": 0, "alert": {"source": "g", "title": "x"},
                                              "expect": {"class": "real"}}]})],
         "mine.jsonl:1: case 'storm': service: Field required"),
        ([json.dumps(SMALL[0]), json.dumps(SMALL[0])], "mine.jsonl:2: duplicate case id 'storm'"),
        ([json.dumps({"id": "x", "alerts": [{"alert": {"source": "g", "service": "s", "title": "t"}}]})],
         "mine.jsonl:1: case 'x' has no `expect`"),
        ([json.dumps({"id": "x", "alerts": [{"alert": {}, "expect": {"class": "maybe"}}]})],
         "mine.jsonl:1: alerts.0.expect.class"),
        ([json.dumps({"id": "x", "config": {"triage": {"flapping_window_s": -1}},
                      "alerts": SMALL[0]["alerts"]})], "mine.jsonl:1: case 'x': flapping_window_s"),
        (["# only a comment"], "no cases"),
    ],
)  # fmt: skip
def test_malformed_dataset_exits_2_naming_the_line(tmp_path: Path, lines: list[str], message: str) -> None:
    result = runner.invoke(cli.app, ["eval", "triage", "--dataset", str(write(tmp_path, lines))])
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", "")

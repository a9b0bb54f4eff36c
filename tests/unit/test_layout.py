"""The tree is the architecture: imports point one way, every stage has the same files, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "triage", "diagnosis", "fixgen", "review", "notifier")
STAGE_FILES = ("app.py", "handlers.py", "usecase.py", "ports.py", "adapters.py", "memory.py")
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/__init__.py"))  # the stages and the console
MAX_LINES = 400


def _sources(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "demo_scenario" not in p.parts]


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_kernel_never_imports_a_service() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _imported_modules(p) if m.split(".")[0] == "services")
        for p in _sources("pagerpatch")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_stage_is_a_service() -> None:
    assert set(STAGES) < set(SERVICES)


@pytest.mark.parametrize("stage", SERVICES)
def test_a_stage_imports_no_other_stage(stage: str) -> None:
    others = {f"services.{s}" for s in SERVICES if s != stage}
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _imported_modules(p) if ".".join(m.split(".")[:2]) in others)
        for p in (ROOT / "services" / stage).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_the_same_files(stage: str) -> None:
    folder = ROOT / "services" / stage
    missing = [f for f in STAGE_FILES if not (folder / f).is_file()]
    has_domain = (folder / "domain.py").is_file() or (folder / "domain" / "__init__.py").is_file()
    assert missing == [] and has_domain, f"services/{stage} lacks {missing or ['domain']}"


def test_no_module_is_over_the_size_limit() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in [*_sources("pagerpatch"), *_sources("services"), *_sources("schemas")]
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}

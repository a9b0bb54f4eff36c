"""Bounded work: at most N sandboxes per fixgen process and N pieces of git work per diagnosis process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from pagerpatch.kernel.breakers import Breakers
from pagerpatch.settings import Settings
from services.diagnosis import adapters as diagnosis_adapters
from services.fixgen import adapters as fixgen_adapters


class Peak:
    """Counts how many calls run at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def work(self, result: Any = None) -> Any:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.02)
        self.now -= 1
        return result


async def test_fixgen_runs_at_most_max_concurrent_sandboxes(monkeypatch: pytest.MonkeyPatch) -> None:
    peak = Peak()

    async def fake_run_python(sandbox: Any, env: Any, script: str, tree: Path, *, timeout_s: float) -> str:
        return str(await peak.work(script))

    monkeypatch.setattr(fixgen_adapters, "run_python", fake_run_python)
    runner = fixgen_adapters.SandboxTestRunner(object(), object(), max_concurrent=2)  # type: ignore[arg-type]
    results = await asyncio.gather(*(runner.run_python(None, f"s{i}", Path("."), timeout_s=1) for i in range(7)))  # type: ignore[arg-type]
    assert results == [f"s{i}" for i in range(7)]  # every run happens; the extra ones waited
    assert peak.peak == 2


def test_sandbox_bound_defaults_to_the_cpu_count() -> None:
    runner = fixgen_adapters.SandboxTestRunner(object(), object())  # type: ignore[arg-type]
    assert runner.max_concurrent == (os.cpu_count() or 1)
    assert Settings().sandbox.max_concurrent is None and Settings().diagnosis.max_concurrent is None


async def test_diagnosis_git_work_is_bounded_per_process() -> None:
    diagnosis_adapters.limit_git_work(3)
    try:
        peak = Peak()
        guard = diagnosis_adapters.GitBreaker(Breakers())
        done = await asyncio.gather(*(guard("demo", lambda i=i: peak.work(i)) for i in range(10)))
        assert done == list(range(10))
        assert peak.peak == 3
    finally:
        diagnosis_adapters.limit_git_work(None)

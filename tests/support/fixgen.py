"""The calc scenario fixgen's use-case tests share: one repository, one incident, the suspect commit a diagnosis
names, and the use case built on memory ports around them (no servers)."""

from __future__ import annotations

import uuid

from pagerpatch.settings import RepoConfig
from schemas.events import DiagnosisReadyPayload, SuspectCommit
from services.fixgen.memory import MemoryRepos, RecordingBreakers, ScriptedReverter, ScriptedTestRunner, sandbox_result
from services.fixgen.modelpatch import ModelPatcher
from services.fixgen.usecase import FixGenerator, FixOutcome

BASE = "a" * 40
SUSPECT = SuspectCommit(sha="b" * 40, subject="Divide totals by the item count")
INCIDENT = uuid.UUID("6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5b")
REPO = RepoConfig(name="calc", path="/srv/calc", test_command="python -m pytest -q")
TIMEOUT_S = 42.0  # the sandbox default; a repository's own test timeout wins over it
PASSED = sandbox_result(REPO.test_command, output="============ 12 passed in 0.31s ============\n")


def diagnosis(suspect: SuspectCommit | None = SUSPECT) -> DiagnosisReadyPayload:
    """The diagnosis of a ZeroDivisionError in calc's total(), naming `suspect`."""
    return DiagnosisReadyPayload(
        repo=REPO.name, base_commit=BASE, root_cause="ZeroDivisionError in total()", suspect_commit=suspect,
        confidence=0.9,
    )  # fmt: skip


def fixgen(
    reverter: ScriptedReverter,
    runner: ScriptedTestRunner | None,
    problem: str | None = None,
    model: ModelPatcher | None = None,
) -> FixGenerator:
    """The use case on REPO with scripted git and tests; `problem` is why no sandbox can be made, if any; `model`
    the model-patch strategy (its agent scripted too), if any."""
    return FixGenerator(
        repos=MemoryRepos.of(REPO), reverter=reverter, tests=runner, sandbox_problem=problem, timeout_s=TIMEOUT_S,
        model=model,
    )  # fmt: skip


async def run(
    gen: FixGenerator, d: DiagnosisReadyPayload | None = None, breakers: RecordingBreakers | None = None
) -> FixOutcome:
    """The use case for INCIDENT on REPO, through the kernel's (in-process) breakers."""
    return await gen.revert_and_test(d or diagnosis(), REPO, INCIDENT, breakers or RecordingBreakers())


async def generate(
    gen: FixGenerator, d: DiagnosisReadyPayload | None = None, breakers: RecordingBreakers | None = None
) -> FixOutcome:
    """The whole strategy chain for INCIDENT on REPO (revert-and-test, then the model patch when configured)."""
    return await gen.generate(d or diagnosis(), REPO, INCIDENT, breakers or RecordingBreakers())

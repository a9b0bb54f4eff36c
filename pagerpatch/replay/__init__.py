"""Replay (docs/replay.md): an incident's recorded inputs through the stages again, with changed configuration,
in isolation, and the outcomes compared; and durable consumers that rebuild a downstream state from the log.

The kernel owns the neutral parts: the types a stage's replay step takes and returns (`model`), the chain that
feeds each stage's output events to the next (`chain`), the comparison of outcomes (`outcome`), reading what was
recorded (`recorded`) and the replay's settings (`config`). The steps themselves are the stages'
(`services/<stage>/replay.py`), found through the `pagerpatch.replay` entry point group, never imported here.
"""

from pagerpatch.replay.chain import ENTRY_POINT_GROUP, STAGES, load_steps, run_chain
from pagerpatch.replay.model import ReplayInput, ReplayStep, StageOutcome, repo_for_service

__all__ = [
    "ENTRY_POINT_GROUP",
    "STAGES",
    "ReplayInput",
    "ReplayStep",
    "StageOutcome",
    "load_steps",
    "repo_for_service",
    "run_chain",
]

"""Review's replay step (`pagerpatch replay`): the replayed fix through the same use case with the replay's risk
policy (settings `policy:` overridden by its policies.yaml), the approval gate and audit log in memory, and the
review agent (with a model) costed in memory. Only the verdict on the fix is replayed, never a person's decision."""

from __future__ import annotations

from pagerpatch.replay.model import ReplayInput, StageOutcome, offline_runtime, spent
from pagerpatch.settings import Settings
from schemas.events import FixValidated
from services.review.adapters import LlmCritic
from services.review.memory import MemoryApprovals, MemoryAudit
from services.review.ports import Critic, NoCritic
from services.review.settings import risk_policy
from services.review.usecase import STAGE, Review


async def replay(inputs: ReplayInput, settings: Settings) -> StageOutcome:
    event = inputs.events[0]
    assert isinstance(event, FixValidated)
    runtime = offline_runtime(settings)
    critic: Critic = LlmCritic(runtime) if runtime.enabled else NoCritic()
    review = Review(policy=risk_policy(settings), approvals=MemoryApprovals(), audit=MemoryAudit(), critic=critic)
    outputs = await review.on_fix(event)
    return StageOutcome(STAGE, tuple(outputs), spent(runtime))

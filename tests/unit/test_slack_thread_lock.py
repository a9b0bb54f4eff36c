"""One update of an incident's Slack thread at a time in the notifier process, however events interleave."""

from __future__ import annotations

import asyncio
import uuid

from services.notifier.memory import MemoryNotifications, MemoryOutbox, MemoryThreads
from services.notifier.thread import IncidentThread


async def test_the_incident_lock_has_one_holder_even_when_a_waiter_has_not_resumed_yet() -> None:
    thread = IncidentThread(MemoryThreads(), MemoryOutbox(), MemoryNotifications())
    incident, other = uuid.uuid4(), uuid.uuid4()
    inside: dict[uuid.UUID, int] = {incident: 0, other: 0}
    peak: dict[uuid.UUID, int] = {incident: 0, other: 0}

    async def update(which: uuid.UUID, start_s: float) -> None:
        await asyncio.sleep(start_s)
        async with thread._locked(which):
            inside[which] += 1
            peak[which] = max(peak[which], inside[which])
            await asyncio.sleep(0.05)  # the Slack calls
            inside[which] -= 1

    # The second waits for the first; the third arrives while the second holds the lock it waited for.
    await asyncio.gather(update(incident, 0), update(incident, 0.01), update(incident, 0.07), update(other, 0.01))
    assert peak == {incident: 1, other: 1}
    assert thread._locks == {} and thread._users == {}  # nothing kept once every update is done

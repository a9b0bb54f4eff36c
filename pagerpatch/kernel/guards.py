"""The guards every stage applies to its input, written once: what is missing from an event is poison."""

from __future__ import annotations

import uuid
from typing import Any

from pagerpatch.kernel.errors import Poison
from schemas.envelope import Event


def incident_id_of(event: Event[Any]) -> uuid.UUID:
    """The incident an event belongs to; an event of a pipeline stage without one can never be handled."""
    if event.incident_id is None:
        raise Poison(f"{event.type} without incident_id")
    return event.incident_id

"""The one envelope every pipeline event travels in."""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

P = TypeVar("P", bound="Payload")
E = TypeVar("E", bound="Event[Any]")


class Payload(BaseModel):
    """Base of every payload: frozen, and strict about unknown fields when *built* by a producer."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def utcnow() -> datetime:
    return datetime.now(UTC)


def derived_id(causation_id: uuid.UUID, stage: str, kind: str) -> uuid.UUID:
    """Deterministic id of an output event, so a retried step produces the very same event."""
    return uuid.uuid5(causation_id, f"{stage}:{kind}")


class Event(BaseModel, Generic[P]):
    """Envelope: identity, correlation and causation around a typed payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    schema_version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    incident_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    source: str = Field(min_length=1, max_length=200)
    team: str | None = Field(default=None, max_length=200)
    payload: P

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def create(cls, payload: P, *, source: str, **envelope: Any) -> Self:
        """Build a fresh event of this type (new id unless one is given)."""
        return cls(type=cls.TYPE, schema_version=cls.VERSION, payload=payload, source=source, **envelope)

    def derive(self, event_cls: builtins.type[E], payload: Any, *, stage: str, **envelope: Any) -> E:
        """Build the event a stage publishes in answer to this one, with a deterministic id."""
        fields: dict[str, Any] = {
            "event_id": derived_id(self.event_id, stage, event_cls.TYPE),
            "type": event_cls.TYPE,
            "schema_version": event_cls.VERSION,
            "incident_id": self.incident_id,
            "causation_id": self.event_id,
            "source": stage,
            "team": self.team,
            "payload": payload,
        }
        fields.update(envelope)
        return event_cls(**fields)

    @property
    def subject(self) -> str:
        return f"pagerpatch.{self.type}"

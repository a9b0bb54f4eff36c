"""Encoding and tolerant decoding of events on the wire."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.envelope import Event
from schemas.events import EVENT_BY_TYPE, AnyEvent

_ANY: TypeAdapter[Any] = TypeAdapter(AnyEvent)


class UnknownEventType(ValueError):
    pass


def encode(event: Event[Any]) -> bytes:
    return event.model_dump_json().encode()


def decode(raw: bytes | str, expected: type[Event[Any]] | None = None) -> Event[Any]:
    """Parse an event, ignoring fields this version does not know (an older consumer reads newer events).

    Raises pydantic.ValidationError or UnknownEventType for input no consumer could ever accept.
    """
    if expected is not None:
        event: Event[Any] = expected.model_validate_json(raw, extra="ignore")
        return event
    parsed: Event[Any] = _ANY.validate_json(raw, extra="ignore")
    return parsed


def event_class(event_type: str) -> type[Event[Any]]:
    try:
        return EVENT_BY_TYPE[event_type]
    except KeyError as exc:
        raise UnknownEventType(f"unknown event type {event_type!r}") from exc


__all__ = ["UnknownEventType", "ValidationError", "decode", "encode", "event_class"]

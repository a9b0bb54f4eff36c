"""A use case holds its ports by their Protocol; a unit test reaches the in-memory one back to read what it recorded."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def memory(port: object, kind: type[T]) -> T:
    """`port` as the in-memory implementation `kind` the test built it with (the test fails when it is not)."""
    assert isinstance(port, kind), f"{type(port).__name__} is not a {kind.__name__}"
    return port

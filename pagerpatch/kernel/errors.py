"""The two kinds of failure a handler can raise, decided where they are raised."""

from __future__ import annotations


class Poison(Exception):
    """Bad input: never retried. The message is dead-lettered with this reason and acked."""


class Transient(Exception):
    """A dependency failed or is unavailable: the message waits and is retried later."""

    def __init__(self, message: str, *, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

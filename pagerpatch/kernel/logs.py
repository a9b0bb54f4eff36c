"""Process logging: one line per record, prefixed with the service name."""

from __future__ import annotations

import logging
import sys

from pagerpatch.kernel.redaction import RedactingFilter


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # secrets never reach a log line (pagerpatch/redaction.py)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # FastStream logs every message at INFO; per-message access logs cost ~20% throughput (CONVENTIONS.md).
    logging.getLogger("faststream").setLevel(logging.WARNING)
    logging.getLogger("faststream.access").setLevel(logging.WARNING)
    # The broker's own logger sets itself to INFO when it starts, so the level above does not reach it; its
    # supervisor says "callback for Task-N is being executed..." for every subscriber task it stops (dozens a stop).
    logging.getLogger("faststream.access.nats").addFilter(_drop_task_callback_chatter)


def _drop_task_callback_chatter(record: logging.LogRecord) -> bool:
    """False for FastStream's per-task "callback ... is being executed" records below WARNING; keeps the rest."""
    text = str(record.msg)
    return record.levelno >= logging.WARNING or not (text.startswith("callback for ") and "is being executed" in text)

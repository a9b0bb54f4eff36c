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

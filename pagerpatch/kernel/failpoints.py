"""Failpoints: named places where an operator (or a crash-consistency test) can make a process die.

`PAGERPATCH_FAILPOINTS=notifier.after_push,triage.after_publish` makes the process SIGKILL itself the first
time it reaches each named point (a marker under PAGERPATCH_HOME/failpoints/ makes each fire once), so
recovery from a crash at exactly that step can be exercised on the real system.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)

_armed: frozenset[str] = frozenset()
_dir: Path | None = None


def arm(names: list[str], state_dir: Path) -> None:
    global _armed, _dir
    _armed = frozenset(n.strip() for n in names if n.strip())
    _dir = state_dir / "failpoints"


def reached(name: str) -> None:
    """Die here (once) if this failpoint is armed."""
    if name not in _armed or _dir is None:
        return
    _dir.mkdir(parents=True, exist_ok=True)
    marker = _dir / name
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    log.warning("failpoint %s reached: killing this process", name)
    logging.shutdown()
    os.kill(os.getpid(), signal.SIGKILL)

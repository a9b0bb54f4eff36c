"""Where the running system is: from settings, else from the state file `pagerpatch up` writes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pagerpatch.settings import Settings

STATE_FILE = "runtime.json"


class NotRunning(Exception):
    pass


@dataclass(frozen=True)
class Endpoints:
    nats_url: str
    database_url: str
    ingest_url: str
    pid: int | None = None
    console_url: str = ""  # the web console `up` started ("": none)


def write(state_dir: Path, endpoints: Endpoints) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(endpoints)))
    tmp.replace(path)
    return path


def clear(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(state_dir: Path) -> Endpoints | None:
    """The endpoints of a `pagerpatch up` still alive on this state folder, if any."""
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
        ep = Endpoints(**data)
    except (OSError, ValueError, TypeError):
        return None
    return ep if _alive(ep.pid) else None


def resolve(settings: Settings) -> Endpoints:
    """External servers from settings win; otherwise the running embedded stack's; otherwise a clear error."""
    ingest = f"http://{settings.ingest_host}:{settings.ingest_port}"
    live = running(settings.state_dir)
    nats_url = settings.nats_url or (live.nats_url if live else None)
    db_url = settings.database_url or (live.database_url if live else None)
    if not nats_url or not db_url:
        raise NotRunning(
            f"no running pagerpatch found under {settings.state_dir}: start it with `pagerpatch up` "
            "(or `./dev run`), or set NATS_URL and DATABASE_URL"
        )
    return Endpoints(nats_url=nats_url, database_url=db_url, ingest_url=live.ingest_url if live else ingest)

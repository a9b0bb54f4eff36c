"""Control groups for sandbox runs: one group per run, with a memory and a process limit, killed as a whole.

Which is used is decided once per process by `detect()` (and said in the log and README):

- **cgroup v2** where the process's own cgroup has the `memory` and `pids` controllers for its children (enabled
  already, or enabled by us when allowed) and is writable: `memory.max` (+ `memory.swap.max=0`) and `pids.max`,
  and `cgroup.kill` to end everything in it.
- **cgroup v1 pids** on a v1/hybrid host where the `pids` hierarchy is writable (typically root): `pids.max` only.
  Root ignores RLIMIT_NPROC, so this is what stops a fork bomb there; memory stays with RLIMIT_AS.
- **none**: rlimits only (process.py: RLIMIT_AS, RLIMIT_CPU, RLIMIT_NPROC).

A run joins its group before anything of the command starts: a tiny `/bin/sh` wrapper writes its own pid into
`cgroup.procs` and then execs the runner's argv, so every descendant (even one that left the process group) is in
the group and is killed with it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

CgroupMode = Literal["v2", "v1-pids"]
PREFIX = "pagerpatch-sandbox-"
_JOIN = 'for f do case "$f" in --) break;; esac; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'
JOIN_FAILED = 125  # the wrapper's exit status when it could not enter the group


@dataclass(frozen=True)
class CgroupSupport:
    mode: CgroupMode
    parent: Path  # where each run's group is made


def mounts(mountinfo: str) -> list[tuple[Path, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup filesystem in a /proc/<pid>/mountinfo text."""
    found = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((Path(fields[4]), tail[0], set(tail[2].split(","))))
    return found


def own_groups(cgroup_file: str) -> dict[str, str]:
    """Controller (or "" for the v2 hierarchy) -> this process's path in it, from /proc/self/cgroup."""
    groups: dict[str, str] = {}
    for line in cgroup_file.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                groups[controller] = parts[2]
    return groups


def candidates(mountinfo: str, cgroup_file: str) -> list[CgroupSupport]:
    """Where run groups could go, best first (v2 with memory+pids, then the v1 pids hierarchy), unchecked."""
    groups = own_groups(cgroup_file)
    found: list[CgroupSupport] = []
    for point, fstype, options in mounts(mountinfo):
        if fstype == "cgroup2" and "" in groups:
            found.insert(0, CgroupSupport("v2", point / groups[""].lstrip("/")))
        elif fstype == "cgroup" and "pids" in options and "pids" in groups:
            found.append(CgroupSupport("v1-pids", point / groups["pids"].lstrip("/")))
    return found


def _v2_ready(parent: Path) -> bool:
    """memory and pids available to children of `parent` (enabling them when they are not yet)."""
    try:
        controllers = set((parent / "cgroup.controllers").read_text().split())
        if not {"memory", "pids"} <= controllers:
            return False
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        if not {"memory", "pids"} <= enabled:
            # Refused (EBUSY) when `parent` holds processes itself and is not the root: then it is not ours to use.
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        return True
    except OSError:
        return False


def _probe(support: CgroupSupport) -> str | None:
    """Make a group, move a throwaway shell into it, remove it: None when all of that works."""
    if support.mode == "v2" and not _v2_ready(support.parent):
        return "the memory and pids controllers are not available to child groups"
    group = RunGroup.create(support, memory_bytes=64 * 1024 * 1024, max_processes=8)
    try:
        done = subprocess.run(["/bin/sh", "-c", _JOIN, "probe", *map(str, group.procs_files()), "--", "true"],
                              capture_output=True, timeout=10, check=False)  # fmt: skip
        return None if done.returncode == 0 else f"cannot join a group: {done.stderr.decode(errors='replace')}"
    finally:
        group.close()


@lru_cache(maxsize=1)
def detect() -> CgroupSupport | None:
    """The cgroup support this process can use (cached), or None: rlimits only."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        cgroup_file = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    for support in candidates(mountinfo, cgroup_file):
        if not os.access(support.parent, os.W_OK):
            continue
        try:
            problem = _probe(support)
        except (OSError, subprocess.SubprocessError) as exc:
            problem = str(exc)
        if problem is None:
            log.info("sandbox limits: cgroup %s under %s", support.mode, support.parent)
            return support
        log.info("sandbox limits: cgroup %s under %s not usable (%s)", support.mode, support.parent, problem)
    log.info("sandbox limits: rlimits only (no writable cgroup v2 with memory+pids, nor a v1 pids hierarchy)")
    return None


@dataclass
class RunGroup:
    """One run's control group."""

    support: CgroupSupport
    path: Path

    @classmethod
    def create(cls, support: CgroupSupport, *, memory_bytes: int, max_processes: int | None) -> RunGroup:
        path = support.parent / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        path.mkdir()
        group = cls(support, path)
        try:
            group._write("pids.max", "max" if max_processes is None else str(max_processes))
            if support.mode == "v2":
                group._write("memory.max", str(memory_bytes))
                with suppress(OSError):  # no swap accounting: memory.max alone
                    group._write("memory.swap.max", "0")
        except OSError:
            group.close()
            raise
        return group

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text()
        except OSError:
            return ""

    def procs_files(self) -> list[Path]:
        return [self.path / "cgroup.procs"]

    def join_prefix(self) -> list[str]:
        """Argv prefix: enter the group, then exec the rest."""
        return ["/bin/sh", "-c", _JOIN, "pagerpatch-cgroup", *map(str, self.procs_files()), "--"]

    def _counter(self, name: str, key: str) -> int:
        for line in self._read(name).splitlines():
            k, _, v = line.partition(" ")
            if k == key and v.strip().isdigit():
                return int(v)
        return 0

    @property
    def oom_killed(self) -> bool:
        return self.support.mode == "v2" and self._counter("memory.events", "oom_kill") > 0

    @property
    def process_limit_hit(self) -> bool:
        return self._counter("pids.events", "max") > 0

    def pids(self) -> list[int]:
        return [int(p) for p in self._read("cgroup.procs").split() if p.isdigit()]

    def kill(self, grace_s: float = 3.0) -> None:
        """SIGKILL everything in the group (`cgroup.kill` on v2; pid by pid, until empty, on v1)."""
        if self.support.mode == "v2" and (self.path / "cgroup.kill").exists():
            with suppress(OSError):
                self._write("cgroup.kill", "1")
        deadline = time.monotonic() + grace_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def close(self) -> None:
        """Kill what is left and remove the group (retried while the killed processes are being reaped)."""
        self.kill()
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)
        log.warning("sandbox cgroup %s could not be removed", self.path)

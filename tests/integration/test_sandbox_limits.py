"""Sandbox limits with real processes, in the real bubblewrap sandbox (and what the unsandboxed runner can and
cannot do): a test writing outside its worktree fails, a test opening a socket fails, a fork bomb and a memory hog
are stopped, a spinning process is stopped by its CPU limit, and nothing outlives the run.

Every bomb here is bounded even if a limit were missing (at most 128 processes, 1 GiB, a short timeout), so a
regression makes a test fail, never the machine fall over.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from pagerpatch.sandbox import BubblewrapSandbox, Sandbox, UnsandboxedRunner, cgroups

pytestmark = pytest.mark.integration

_bwrap = BubblewrapSandbox()
needs_bwrap = pytest.mark.skipif(not _bwrap.available(), reason=_bwrap.unavailable_reason() or "")
PYTEST = "python -m pytest -q -p no:cacheprovider"


def _runners() -> list[object]:
    return [
        pytest.param("bubblewrap", marks=needs_bwrap, id="bubblewrap"),
        pytest.param("unsandboxed", id="unsandboxed"),
    ]


def _make(backend: str, **limits: int | float | None) -> Sandbox:
    if backend == "bubblewrap":
        return BubblewrapSandbox(**limits)  # type: ignore[arg-type]
    return UnsandboxedRunner(allow_unsandboxed=True, **limits)  # type: ignore[arg-type]


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    tree = tmp_path / "work"
    tree.mkdir()
    return tree


# ---------------------------------------------------------------- files


WRITES_OUTSIDE = """\
from pathlib import Path

def test_writes_outside_the_tree():
    Path({target!r}).write_text("leaked")
"""


@needs_bwrap
@pytest.mark.parametrize("where", ["venv", "sibling"])
async def test_a_test_that_writes_outside_the_worktree_fails(where: str, tmp_path: Path, worktree: Path) -> None:
    # The interpreter's own tree is bound read-only; a sibling of the worktree is not there at all (its parent is
    # the sandbox's private /tmp), so its directory does not exist inside.
    outside = tmp_path / "outside"
    outside.mkdir()
    target = Path(sys.prefix) / f"leak-{os.getpid()}.txt" if where == "venv" else outside / "leak.txt"
    (worktree / "test_leak.py").write_text(WRITES_OUTSIDE.format(target=str(target)))
    result = await _bwrap.run(PYTEST, worktree, timeout_s=120)
    assert result.exit_code == 1, result.output
    assert "1 failed" in result.summary
    assert "Read-only file system" in result.output or "No such file or directory" in result.output
    assert not target.exists()


async def test_the_unsandboxed_runner_cannot_stop_such_a_write(tmp_path: Path, worktree: Path) -> None:
    """What only bubblewrap gives: on the host the same test writes where it likes."""
    target = tmp_path / "outside" / "leak.txt"
    target.parent.mkdir()
    (worktree / "test_leak.py").write_text(WRITES_OUTSIDE.format(target=str(target)))
    result = await UnsandboxedRunner(allow_unsandboxed=True).run(PYTEST, worktree, timeout_s=120)
    assert result.passed, result.output
    assert target.read_text() == "leaked"


# ---------------------------------------------------------------- network


@pytest.fixture
async def host_server() -> AsyncIterator[tuple[int, list[str]]]:
    connections: list[str] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        await server.wait_closed()


OPENS_SOCKET = """\
import socket

def test_reaches_the_host():
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
"""


@pytest.mark.parametrize("backend", _runners())
async def test_a_test_that_opens_a_network_socket_fails_in_the_sandbox_only(
    backend: str, worktree: Path, host_server: tuple[int, list[str]]
) -> None:
    port, connections = host_server
    (worktree / "test_net.py").write_text(OPENS_SOCKET.format(port=port))
    result = await _make(backend).run(PYTEST, worktree, timeout_s=120)
    await asyncio.sleep(0.2)
    if backend == "bubblewrap":  # --unshare-net: a namespace with nothing but a down loopback
        assert result.exit_code == 1 and "1 failed" in result.summary, result.output
        assert "OSError" in result.output or "ConnectionRefusedError" in result.output
        assert connections == []
    else:  # the host's network: what the unsandboxed runner cannot take away
        assert result.passed, result.output
        assert len(connections) == 1


# ---------------------------------------------------------------- processes


FORK_BOMB = """\
import os, sys, time
log = open("forks.log", "a")
refused = 0
for generation in range(7):  # doubles every generation: 128 processes at most, even with no limit at all
    try:
        pid = os.fork()
    except OSError as exc:
        refused += 1
        print("fork refused:", type(exc).__name__, exc, flush=True)
        break
    if pid == 0:
        log.write("forked\\n")
        log.flush()
time.sleep(2)  # all alive at once
sys.exit(3 if refused else 0)
"""


def _bounded_by_processes() -> str | None:
    """Why a process limit would not bind here (None: it does)."""
    if cgroups.detect() is None and os.getuid() == 0:
        return "root without a usable cgroup: RLIMIT_NPROC does not bind root"
    return None


@pytest.mark.parametrize("backend", _runners())
async def test_a_fork_bomb_is_stopped_at_the_process_limit(backend: str, worktree: Path) -> None:
    if (why := _bounded_by_processes()) is not None:
        pytest.skip(why)
    (worktree / "bomb.py").write_text(FORK_BOMB)
    limited = await _make(backend, max_processes=24).run("python bomb.py", worktree, timeout_s=30)
    forks = (worktree / "forks.log").read_text().count("forked")
    assert forks < 24, limited.output
    assert "fork refused: BlockingIOError" in limited.output, limited
    assert not limited.timed_out and "processes" in limited.limits_hit, limited
    assert await asyncio.to_thread(_survivors, worktree) == []

    # Control: with room for all of them, the same bomb makes its 127 children; the limit is what stopped it.
    (worktree / "forks.log").unlink()
    roomy = await _make(backend, max_processes=400).run("python bomb.py", worktree, timeout_s=30)
    assert roomy.passed, roomy
    assert (worktree / "forks.log").read_text().count("forked") == 127, roomy


def _survivors(worktree: Path, grace_s: float = 3.0) -> list[int]:
    """Processes still running bomb.py from this worktree once `grace_s` has passed."""
    deadline = time.monotonic() + grace_s
    while True:
        left = []
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            try:
                if "bomb.py" in (proc.info["cmdline"] or []) and str(worktree) in (proc.info["cwd"] or ""):
                    left.append(proc.pid)
            except psutil.Error:
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


# ---------------------------------------------------------------- memory and CPU


MEMORY_HOG = """\
chunks = []
for i in range(32):  # 32 MiB at a time, 1 GiB at most even with no limit
    chunks.append(bytearray(32 * 1024 * 1024))
    print("allocated", (i + 1) * 32, "MiB", flush=True)
print("done")
"""


@pytest.mark.parametrize("backend", _runners())
async def test_a_memory_hog_is_stopped(backend: str, worktree: Path) -> None:
    (worktree / "hog.py").write_text(MEMORY_HOG)
    result = await _make(backend, memory_mb=192).run("python hog.py", worktree, timeout_s=60)
    assert not result.passed and not result.timed_out
    assert "done" not in result.output
    allocated = [int(line.split()[1]) for line in result.output.splitlines() if line.startswith("allocated")]
    assert allocated and max(allocated) < 192
    assert result.out_of_memory and "memory" in result.limits_hit


SPIN = "import time\nstart = time.process_time()\nwhile True:\n    pass\n"


@pytest.mark.parametrize("backend", _runners())
async def test_a_spinning_process_is_stopped_by_its_cpu_limit_before_the_timeout(backend: str, worktree: Path) -> None:
    (worktree / "spin.py").write_text(SPIN)
    result = await _make(backend, cpu_s=1).run("python spin.py", worktree, timeout_s=60)
    assert not result.timed_out and result.duration_s < 30
    assert result.killed_by_signal in (signal.SIGXCPU, signal.SIGKILL)
    assert "cpu" in result.limits_hit or result.killed_by_signal == signal.SIGKILL


# ---------------------------------------------------------------- the run's control group


def _alive(marker: str, grace_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + grace_s
    while True:
        left = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.skipif(cgroups.detect() is None, reason="no usable cgroup on this host: rlimits only")
async def test_a_process_that_left_the_process_group_dies_with_the_run(worktree: Path) -> None:
    """setsid escapes the process-group kill (and, once its parent is gone, the tree); the run's cgroup holds it."""
    command = "setsid sh -c 'sleep {m}' >/dev/null 2>&1 & sleep 0.5; echo started"
    # Control: without the cgroup the escaped sleeper outlives the run.
    control = f"32.{os.getpid()}"
    plain = UnsandboxedRunner(allow_unsandboxed=True, cgroups=False)
    result = await plain.run(command.format(m=control), worktree, timeout_s=10)
    assert result.passed and "started" in result.output
    escaped = await asyncio.to_thread(_alive, control, 0.5)
    try:
        assert escaped, "the control sleeper should have survived without a cgroup"
    finally:
        for proc in escaped:
            proc.kill()

    marker = f"31.{os.getpid()}"
    result = await UnsandboxedRunner(allow_unsandboxed=True).run(command.format(m=marker), worktree, timeout_s=10)
    assert result.passed and "started" in result.output
    assert await asyncio.to_thread(_alive, marker, 3.0) == []
    support = cgroups.detect()
    assert support is not None
    assert not [p for p in support.parent.iterdir() if p.name.startswith(f"{cgroups.PREFIX}{os.getpid()}-")]


# ---------------------------------------------------------------- which cgroup (pure)

HYBRID_MOUNTS = """\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
22 1 0:5 / /proc rw - proc proc rw
"""
HYBRID_GROUPS = "8:pids:/\n4:memory:/jobs/abc\n1:cpu:/\n0::/user.slice/session-1.scope\n"
V2_MOUNTS = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_a_hybrid_host_offers_v2_first_then_the_v1_pids_hierarchy() -> None:
    found = cgroups.candidates(HYBRID_MOUNTS, HYBRID_GROUPS)
    assert [(c.mode, str(c.parent)) for c in found] == [
        ("v2", "/sys/fs/cgroup/unified/user.slice/session-1.scope"),
        ("v1-pids", "/sys/fs/cgroup/pids"),
    ]


def test_a_pure_v2_host_offers_its_own_group() -> None:
    found = cgroups.candidates(V2_MOUNTS, "0::/system.slice/pagerpatch-fixgen.service\n")
    assert [(c.mode, str(c.parent)) for c in found] == [("v2", "/sys/fs/cgroup/system.slice/pagerpatch-fixgen.service")]


def test_a_v2_group_without_memory_and_pids_for_children_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io hugetlb\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    assert cgroups._v2_ready(tmp_path) is False
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    assert cgroups._v2_ready(tmp_path) is True


def test_a_run_group_on_a_fake_v2_tree_writes_its_limits_and_reads_its_counters(tmp_path: Path) -> None:
    group = cgroups.RunGroup.create(cgroups.CgroupSupport("v2", tmp_path), memory_bytes=256 << 20, max_processes=64)
    assert (group.path / "pids.max").read_text() == "64"
    assert (group.path / "memory.max").read_text() == str(256 << 20)
    assert (group.path / "memory.swap.max").read_text() == "0"
    (group.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (group.path / "pids.events").write_text("max 5\n")
    assert group.oom_killed and group.process_limit_hit
    assert group.join_prefix()[-2:] == [str(group.path / "cgroup.procs"), "--"]


def test_rlimits_go_through_prlimit_with_cpu_and_processes() -> None:
    prefix = UnsandboxedRunner(allow_unsandboxed=True, memory_mb=100, cpu_s=7, max_processes=50).limit_prefix(30)
    if not prefix:
        pytest.skip("no prlimit on this host: the preexec fallback sets the same limits")
    assert prefix[1:3] == [f"--as={100 << 20}", "--cpu=7:8"] and prefix[-1] == "--"
    assert int(prefix[3].removeprefix("--nproc=")) >= 50  # off root, on top of what the user runs already
    assert BubblewrapSandbox(timeout_s=45).limit_prefix(None)[2] == "--cpu=90:91"  # unset: twice the timeout

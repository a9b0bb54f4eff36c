"""The sandbox with real bubblewrap and real processes: isolation, limits, and test-command results."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from pagerpatch.sandbox import BubblewrapSandbox, Sandbox, SandboxError, UnsandboxedRunner

pytestmark = pytest.mark.integration

_bwrap = BubblewrapSandbox()
needs_bwrap = pytest.mark.skipif(not _bwrap.available(), reason=_bwrap.unavailable_reason() or "")


def _runners() -> list[object]:
    return [
        pytest.param("bubblewrap", marks=needs_bwrap, id="bubblewrap"),
        pytest.param("unsandboxed", id="unsandboxed"),
    ]


def _make(backend: str, **limits: int | float) -> Sandbox:
    if backend == "bubblewrap":
        return BubblewrapSandbox(**limits)  # type: ignore[arg-type]
    return UnsandboxedRunner(allow_unsandboxed=True, **limits)  # type: ignore[arg-type]


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    tree = tmp_path / "work"
    tree.mkdir()
    return tree


# ---------------------------------------------------------------- results


@pytest.mark.parametrize("backend", _runners())
async def test_output_and_exit_code_come_back(backend: str, worktree: Path) -> None:
    result = await _make(backend).run("echo out; echo err >&2; pwd; exit 3", worktree)
    assert result.exit_code == 3 and not result.passed and not result.timed_out
    assert result.output.splitlines() == ["out", "err", str(worktree)]
    assert result.backend == backend and result.command.startswith("echo out")


@pytest.mark.parametrize("backend", _runners())
async def test_passing_and_failing_pytest_projects(backend: str, worktree: Path) -> None:
    sandbox = _make(backend)
    (worktree / "test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    ok = await sandbox.run("python -m pytest -q -p no:cacheprovider", worktree, timeout_s=120)
    assert ok.passed, ok.output
    assert ok.summary.startswith("1 passed in ")

    (worktree / "test_bad.py").write_text("def test_bad():\n    assert 1 + 1 == 3\n")
    bad = await sandbox.run("python -m pytest -q -p no:cacheprovider", worktree, timeout_s=120)
    assert not bad.passed and bad.exit_code == 1
    assert bad.summary.startswith("1 failed, 1 passed in ")
    assert f"{worktree}/test_bad.py" in bad.output or "test_bad.py:2" in bad.output


@needs_bwrap
async def test_python_inside_is_this_interpreter(worktree: Path) -> None:
    result = await _bwrap.run("python -c 'import sys, pytest; print(sys.executable)'", worktree)
    assert result.passed, result.output
    assert result.output.strip() == os.path.join(os.path.dirname(sys.executable), "python")


@needs_bwrap
async def test_bwrap_setup_failure_is_a_sandbox_error_not_a_test_failure(worktree: Path) -> None:
    with pytest.raises(SandboxError):
        await _bwrap.run("true", worktree / "missing")


# ---------------------------------------------------------------- isolation


@pytest.fixture
async def host_server() -> AsyncIterator[tuple[int, list[str]]]:
    connections: list[str] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, connections
    finally:
        server.close()
        await server.wait_closed()


def _any_exists(*paths: str) -> bool:
    return any(os.path.lexists(p) for p in paths)


PROBE_NET = """\
import socket, sys
failures = 0
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 53)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("connected", host)
    except OSError as exc:
        failures += 1
        print("refused", host, type(exc).__name__, exc)
sys.exit(0 if failures == 2 else 1)
"""


@needs_bwrap
async def test_network_is_off(worktree: Path, host_server: tuple[int, list[str]]) -> None:
    port, connections = host_server
    (worktree / "probe.py").write_text(PROBE_NET.format(port=port))
    # Control: the same probe on the host does reach the server.
    control = await UnsandboxedRunner(allow_unsandboxed=True).run("python probe.py", worktree)
    assert "connected 127.0.0.1" in control.output
    await asyncio.sleep(0.1)
    assert len(connections) == 1
    connections.clear()

    result = await _bwrap.run("python probe.py", worktree)
    assert result.passed, result.output
    assert "connected" not in result.output
    await asyncio.sleep(0.2)
    assert connections == []


@needs_bwrap
async def test_system_is_read_only(worktree: Path) -> None:
    for target in ("/usr/pagerpatch-probe", "/etc/pagerpatch-probe", "/usr/bin/python3"):
        result = await _bwrap.run(f"echo x >> {target}", worktree)
        assert result.exit_code != 0, target
        assert "Read-only file system" in result.output or "Permission denied" in result.output
    assert not _any_exists("/usr/pagerpatch-probe", "/etc/pagerpatch-probe")
    shadow = await _bwrap.run("cat /etc/shadow", worktree)
    assert shadow.exit_code != 0 or shadow.output == ""


@needs_bwrap
async def test_interpreter_and_venv_are_read_only(worktree: Path) -> None:
    site = Path(sys.prefix) / "pagerpatch-probe"
    result = await _bwrap.run(f"touch {site}", worktree)
    assert result.exit_code != 0 and not site.exists()


@needs_bwrap
async def test_worktree_is_writable_and_the_rest_of_the_host_is_not_visible(tmp_path: Path, worktree: Path) -> None:
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    (sibling / "secret.txt").write_text("host secret")

    wrote = await _bwrap.run("echo made inside > result.txt && mkdir -p sub && echo deep > sub/x", worktree)
    assert wrote.passed, wrote.output
    assert (worktree / "result.txt").read_text() == "made inside\n"
    assert (worktree / "sub" / "x").read_text() == "deep\n"

    peek = await _bwrap.run(f"cat {sibling}/secret.txt; ls {sibling}", worktree)
    assert peek.exit_code != 0 and "host secret" not in peek.output

    # /tmp is a private tmpfs: writing at the sibling's path lands there, never on the host.
    spill = await _bwrap.run(f"mkdir -p {sibling} && echo spill > {sibling}/spill.txt", worktree)
    assert sorted(p.name for p in sibling.iterdir()) == ["secret.txt"], spill.output
    # The interpreter's directories are bound, but not the project around them.
    here = await _bwrap.run(f"cat {__file__}", worktree)
    assert here.exit_code != 0 and "needs_bwrap" not in here.output


# ---------------------------------------------------------------- limits


def _sleepers(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if marker in cmdline:
            found.append(proc)
    return found


def _sleepers_after(marker: str, grace_s: float) -> list[psutil.Process]:
    """The marked sleepers still alive once `grace_s` has passed (returns early when none are left)."""
    deadline = time.monotonic() + grace_s
    while (left := _sleepers(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize("backend", _runners())
async def test_timeout_kills_the_process_tree(backend: str, worktree: Path) -> None:
    marker = f"30.{os.getpid()}{len(backend)}"
    started = time.monotonic()
    result = await _make(backend).run(
        f"echo started; sleep {marker} & sh -c 'sleep {marker}' & sleep {marker}; wait", worktree, timeout_s=1
    )
    assert time.monotonic() - started < 6
    assert result.timed_out and result.exit_code is None and not result.passed
    assert result.summary.startswith("timed out after 1.")
    assert "started" in result.output
    assert await asyncio.to_thread(_sleepers_after, marker, 3.0) == []


@pytest.mark.parametrize("backend", _runners())
async def test_memory_limit_stops_a_big_allocation(backend: str, worktree: Path) -> None:
    sandbox = _make(backend, memory_mb=256)
    small = await sandbox.run("python -c 'x = bytearray(32 * 1024 * 1024); print(len(x))'", worktree)
    assert small.passed, small.output
    big = await sandbox.run("python -c 'x = bytearray(4 * 1024 ** 3); print(len(x))'", worktree)
    assert big.exit_code not in (0, None)
    assert big.out_of_memory and "MemoryError" in big.output


@pytest.mark.parametrize("backend", _runners())
async def test_output_is_limited_while_reading(backend: str, worktree: Path) -> None:
    sandbox = _make(backend, output_limit_bytes=4096)
    script = "import sys; sys.stdout.write('BEGIN' + 'x' * 1_000_000 + 'END')"
    result = await sandbox.run(f'python -c "{script}"', worktree)
    assert result.passed
    assert result.output_truncated and result.output_bytes == 1_000_008
    assert len(result.output.encode()) <= 4096
    assert result.output.startswith("BEGIN") and result.output.endswith("END")
    assert "…[truncated " in result.output


@pytest.mark.parametrize("backend", _runners())
async def test_parent_secrets_do_not_leak(backend: str, worktree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO_TOKEN", "hush-token-value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "hush-api-key")
    monkeypatch.setenv("DB_SECRET", "hush-db")
    result = await _make(backend).run("env", worktree, env={"EXTRA_FLAG": "given"})
    assert result.passed
    assert "hush" not in result.output
    assert "FOO_TOKEN" not in result.output and "ANTHROPIC_API_KEY" not in result.output
    env = dict(line.split("=", 1) for line in result.output.splitlines() if "=" in line)
    assert env["EXTRA_FLAG"] == "given"
    assert env["HOME"] == "/tmp" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].split(":")[0] == os.path.dirname(sys.executable)

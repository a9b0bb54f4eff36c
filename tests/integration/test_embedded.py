"""The embedded nats-server and Postgres: private ports, restarts, crashed previous runs, clean stops."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import nats
import psutil
import pytest

from pagerpatch.ops.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedServerError, EmbeddedStack

pytestmark = pytest.mark.integration

SYSTEM_PORTS = {4222, 5432}  # the machine's own NATS and Postgres: never ours


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _with_children(pid: int) -> list[int]:
    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


async def _wait_dead(pids: list[int], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if not any(_alive(pid) for pid in pids):
            return
        await asyncio.sleep(0.02)
    assert not [pid for pid in pids if _alive(pid)]


def _processes_using(folder: Path) -> list[psutil.Process]:
    """nats-server/postgres processes whose command line or working directory is under `folder`."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] not in ("nats-server", "postgres"):
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            where = [*(proc.info["cmdline"] or []), proc.cwd()]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(str(folder) in part for part in where):
            found.append(proc)
    return found


def _port(url: str) -> int:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port is not None
    return parts.port


async def _publish(url: str, stream: str, payload: bytes) -> int:
    """Publish one message to `stream` (created if missing) and return its sequence from the PubAck."""
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        ack = await js.publish(f"{stream.lower()}.one", payload)
        assert ack.stream == stream
        return ack.seq
    finally:
        await nc.close()


async def _stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.state.messages
    finally:
        await nc.close()


async def test_nats_runs_jetstream_privately_and_keeps_streams_across_restart(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path)
    url = server.start()
    try:
        assert _port(url) not in SYSTEM_PORTS
        assert await _publish(url, "EMBEDDED", b"first") == 1
        pid = server.pid
        assert pid is not None and server.pid_path.read_text().strip() == str(pid)
    finally:
        server.stop()
    await _wait_dead([pid])
    assert not server.pid_path.exists()

    with EmbeddedNats(tmp_path) as again:
        assert await _stream_messages(again.url, "EMBEDDED") == 1
        assert await _publish(again.url, "EMBEDDED", b"second") == 2
    assert not _processes_using(tmp_path)


async def test_nats_replaces_servers_left_by_a_crashed_run(tmp_path: Path) -> None:
    crashed = EmbeddedNats(tmp_path)  # its owner "crashes": the object is abandoned, the server lives on
    crashed.start()
    await _publish(crashed.url, "STALE", b"before the crash")
    stale_pid = crashed.pid
    assert stale_pid is not None

    survivor = EmbeddedNats(tmp_path)
    try:
        survivor.start()
        await _wait_dead([stale_pid])
        assert await _stream_messages(survivor.url, "STALE") == 1

        # A server killed outright leaves a pid file naming a dead process.
        killed_pid = survivor.pid
        assert killed_pid is not None
        os.kill(killed_pid, signal.SIGKILL)
        await _wait_dead([killed_pid])
        assert survivor.pid_path.exists()

        with EmbeddedNats(tmp_path) as restarted:
            assert await _publish(restarted.url, "STALE", b"after the crash") == 2
            assert restarted.pid_path.read_text().strip() == str(restarted.pid)
    finally:
        crashed.stop()
        survivor.stop()
    assert not _processes_using(tmp_path)


async def test_postgres_answers_and_keeps_data_across_restart(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    try:
        assert _port(url) not in SYSTEM_PORTS
        assert urlsplit(url).path == "/pagerpatch"
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("select 1") == 1
            await conn.execute("create table kept (note text)")
            await conn.execute("insert into kept values ('survives a restart')")
        finally:
            await conn.close()
        assert server.pid is not None
        pids = _with_children(server.pid)
        assert len(pids) > 1  # postmaster and its background processes
    finally:
        server.stop()
    await _wait_dead(pids)

    with EmbeddedPostgres(tmp_path) as again:
        conn = await asyncpg.connect(again.url)
        try:
            assert await conn.fetchval("select note from kept") == "survives a restart"
        finally:
            await conn.close()
    assert not _processes_using(tmp_path)


async def test_postgres_replaces_a_postmaster_left_by_a_crashed_run(tmp_path: Path) -> None:
    crashed = EmbeddedPostgres(tmp_path)
    crashed.start()
    conn = await asyncpg.connect(crashed.url)
    await conn.execute("create table kept (note text)")
    await conn.close()
    assert crashed.pid is not None
    stale = _with_children(crashed.pid)

    survivor = EmbeddedPostgres(tmp_path)
    try:
        survivor.start()
        await _wait_dead(stale)
        conn = await asyncpg.connect(survivor.url)
        try:
            assert await conn.fetchval("select count(*) from kept") == 0
        finally:
            await conn.close()

        # SIGKILLed postmaster: stale postmaster.pid, and orphaned children that still hold shared memory.
        assert survivor.pid is not None
        os.kill(survivor.pid, signal.SIGKILL)
        await _wait_dead([survivor.pid])

        with EmbeddedPostgres(tmp_path) as restarted:
            conn = await asyncpg.connect(restarted.url)
            try:
                assert await conn.fetchval("select count(*) from kept") == 0
            finally:
                await conn.close()
    finally:
        crashed.stop()
        survivor.stop()
    assert not _processes_using(tmp_path)


async def test_stack_starts_only_what_is_not_given(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "external") as external:
        with EmbeddedStack(tmp_path / "stack", nats_url=external.url) as stack:
            assert stack.nats is None and stack.nats_url == external.url
            assert stack.postgres is not None and stack.postgres.pid is not None
            conn = await asyncpg.connect(stack.database_url)
            assert await conn.fetchval("select 1") == 1
            await conn.close()
        assert _alive(external.pid or 0)
        assert not _processes_using(tmp_path / "stack")

    with EmbeddedStack(tmp_path / "all") as stack:
        assert stack.nats is not None and stack.postgres is not None
        assert await _publish(stack.nats_url, "STACK", b"x") == 1
        assert _port(stack.database_url) not in SYSTEM_PORTS
    assert not _processes_using(tmp_path)


async def test_stack_leaves_nothing_running_when_start_fails(tmp_path: Path) -> None:
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "data").write_text("not a data directory")
    stack = EmbeddedStack(tmp_path)
    with pytest.raises((OSError, EmbeddedServerError)):
        stack.start()
    assert stack.nats is not None and stack.nats.pid is None
    assert not _processes_using(tmp_path)


async def test_session_servers_and_fresh_db(nats_url: str, database_url: str, fresh_db: str) -> None:
    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()

    assert urlsplit(fresh_db).path.startswith("/test_")
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("select count(*) from pg_tables where schemaname = 'public'") == 0
        await conn.execute("create table only_here (id int)")
    finally:
        await conn.close()
    shared = await asyncpg.connect(database_url)
    try:
        assert await shared.fetchval("select to_regclass('only_here')") is None
    finally:
        await shared.close()


async def test_watchdog_restarts_killed_servers_on_the_same_port_with_their_data(tmp_path: Path) -> None:
    """`pagerpatch up`'s watchdog: a SIGKILLed nats-server or postmaster comes back on its port, data kept, said."""
    from pagerpatch.ops.watchdog import ServerWatchdog

    lines: list[str] = []
    with EmbeddedStack(tmp_path) as stack:
        assert stack.nats is not None and stack.postgres is not None
        nats_url, db_url = stack.nats_url, stack.database_url
        assert await _publish(nats_url, "KEPT", b"before the kill") == 1
        watchdog = ServerWatchdog({"nats-server": stack.nats, "postgres": stack.postgres}, lines.append, poll_s=0.1)
        watching = asyncio.create_task(watchdog.run())
        try:
            for server in (stack.nats, stack.postgres):
                assert server.pid is not None
                os.kill(server.pid, signal.SIGKILL)
            for _ in range(600):
                if sum("restarted at" in line for line in lines) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert stack.nats_url == nats_url and stack.database_url == db_url, lines
            assert await _publish(nats_url, "KEPT", b"after the restart") == 2  # same store
            conn = await asyncpg.connect(db_url)
            try:
                assert await conn.fetchval("select 1") == 1
            finally:
                await conn.close()
        finally:
            watchdog.stopping.set()
            await watching
    said = "\n".join(lines)
    assert "nats-server exited unexpectedly; restarting it on port" in said
    assert "postgres exited unexpectedly; restarting it on port" in said
    assert "nats-server restarted at" in said and "postgres restarted at" in said
    assert not _processes_using(tmp_path)

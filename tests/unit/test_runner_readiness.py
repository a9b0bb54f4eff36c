"""`pagerpatch up` waits for ingest by progress: it keeps waiting while ingest is alive and moving (past the old
fixed 30 s), fails at once when the process exits, and fails after a stall or the overall cap, each time quoting
ingest's last log lines."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable

import pytest

from pagerpatch.ops import runner, supervisor
from pagerpatch.ops.runner import (
    LogTail,
    Observation,
    ProcessState,
    ReadinessPolicy,
    cpu_seconds,
    failure_message,
    ingest_state,
    judge,
    wait_until_ready,
)
from pagerpatch.ops.supervisor import Supervisor

POLICY = ReadinessPolicy(cap_s=180.0, stall_s=60.0, poll_s=0.0, drain_s=0.0)
ALIVE = ProcessState(pid=None)
URL = "http://127.0.0.1:9"


def seen(*, ready: bool = False, process: ProcessState = ALIVE, waited: float = 0.0, idle: float = 0.0) -> Observation:
    return Observation(ready=ready, process=process, waited_s=waited, idle_s=idle)


@pytest.mark.parametrize(
    ("observation", "verdict"),
    [
        (seen(ready=True, waited=500.0, idle=500.0), "ready"),
        (seen(waited=31.0, idle=1.0), "wait"),  # past the old fixed 30 s, still moving: keep waiting
        (seen(waited=179.0, idle=59.0), "wait"),
        (seen(process=ProcessState(pid=42, exit_code=1), waited=0.5), "exited"),
        (seen(process=ProcessState(pid=43, restarts=1), waited=0.5), "exited"),  # already restarted by the supervisor
        (seen(waited=180.0, idle=0.0), "cap"),
        (seen(waited=90.0, idle=60.0), "stalled"),
    ],
)  # fmt: skip
def test_judge(observation: Observation, verdict: str) -> None:
    assert judge(observation, POLICY) == verdict


def test_failure_message_names_the_cause_the_last_answer_and_the_last_lines() -> None:
    exited = failure_message("exited", URL, seen(process=ProcessState(pid=1, exit_code=3), waited=1.25), None,
                             ["[ingest] Traceback", "[ingest] ValueError: bad port"])  # fmt: skip
    assert exited.startswith(f"ingest did not become ready at {URL}/readyz: the process exited (exit 3) after 1.2s")
    assert "its port never answered" in exited
    assert exited.endswith("last lines of ingest:\n  [ingest] Traceback\n  [ingest] ValueError: bad port")

    capped = failure_message("cap", URL, seen(waited=180.0), '503 {"ready": false, "nats": "unavailable"}', [])
    assert "still not ready after 180s" in capped and '/readyz last said: 503 {"ready": false' in capped
    assert "(it printed nothing)" in capped
    stalled = failure_message("stalled", URL, seen(waited=70.0, idle=60.0), None, [])
    assert "no progress for 60s" in stalled


def test_log_tail_passes_every_line_on_and_keeps_the_services_last_lines() -> None:
    printed: list[str] = []
    tail = LogTail("ingest", write=printed.append, keep=2)
    for line in ["[ingest   ] one", "[triage   ] other", "[ingest   ] two", "[ingest   ] three", "[ingestx] no"]:
        tail(line)
    assert len(printed) == 5
    assert list(tail.lines) == ["[ingest   ] two", "[ingest   ] three"]
    assert tail.count == 3


def test_cpu_seconds_of_a_live_and_of_a_missing_process() -> None:
    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        pytest.skip("no /proc on this system")
    sum(i * i for i in range(200_000))  # some CPU time of our own
    assert (cpu_seconds(os.getpid()) or 0.0) > 0.0
    assert cpu_seconds(2**22 + 12345) is None


class FakeClock:
    """Advances `step` seconds each time it is read: every poll is `step` seconds of waiting."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


Probe = Callable[[], Awaitable[tuple[bool, str | None]]]


def answers(*replies: tuple[bool, str | None]) -> Probe:
    """A probe giving `replies` in turn, then the last one forever."""
    queue = list(replies)

    async def probe() -> tuple[bool, str | None]:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return probe


async def test_a_slow_start_that_keeps_moving_is_waited_for_past_thirty_seconds() -> None:
    clock = FakeClock(step=5.0)
    tail = LogTail("ingest", write=lambda _: None)
    # 20 polls of 5 s (100 s): the port answers "not ready" with changing checks, then ready.
    replies = [(False, None)] * 3 + [(False, f'503 {{"step": {i}}}') for i in range(16)] + [(True, "200 ok")]
    await wait_until_ready(URL, answers(*replies), lambda: ALIVE, tail, POLICY, clock)
    assert clock.now >= 100.0


async def test_output_alone_counts_as_progress() -> None:
    clock = FakeClock(step=10.0)
    tail = LogTail("ingest", write=lambda _: None)
    polls = 0

    def process() -> ProcessState:
        nonlocal polls
        polls += 1
        tail(f"[ingest] still importing ({polls})")  # a line per poll, the port silent
        return ALIVE

    replies = [(False, None)] * 12 + [(True, "200 ok")]
    await wait_until_ready(URL, answers(*replies), process, tail, POLICY, clock)
    assert clock.now > POLICY.stall_s


async def test_silence_fails_after_the_stall_window_with_the_last_lines() -> None:
    clock = FakeClock(step=7.0)
    tail = LogTail("ingest", write=lambda _: None)
    tail("[ingest] connecting to nats")
    with pytest.raises(RuntimeError) as failed:
        await wait_until_ready(URL, answers((False, None)), lambda: ALIVE, tail, POLICY, clock)
    assert "no progress for 6" in str(failed.value)
    assert "[ingest] connecting to nats" in str(failed.value)
    assert clock.now < POLICY.cap_s


async def test_the_overall_cap_ends_even_a_moving_start() -> None:
    clock = FakeClock(step=10.0)
    tail = LogTail("ingest", write=lambda _: None)
    replies = [(False, f"503 {{\"attempt\": {i}}}") for i in range(100)]  # a new answer every poll
    with pytest.raises(RuntimeError, match="still not ready after 180s"):
        await wait_until_ready(URL, answers(*replies), lambda: ALIVE, tail, POLICY, clock)


async def test_a_real_ingest_process_that_exits_fails_the_wait_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "restart_delay", lambda *_: 60.0)
    tail = LogTail("ingest", write=lambda _: None)
    sup = Supervisor(["ingest"], {"PYTHONUNBUFFERED": "1"}, write=tail)
    crash = "import sys; print('ingest: cannot bind 127.0.0.1:8080: address in use', flush=True); sys.exit(3)"
    sup.children[0].argv = [sys.executable, "-c", textwrap.dedent(crash)]
    await sup.start()
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as failed:
            await wait_until_ready(URL, answers((False, None)), lambda: ingest_state(sup), tail,
                                   ReadinessPolicy(poll_s=0.05))  # fmt: skip
    finally:
        await sup.stop(timeout_s=1.0)
    assert time.monotonic() - started < 10.0  # not the cap, not the stall window
    message = str(failed.value)
    assert "the process exited (exit 3)" in message
    assert "cannot bind 127.0.0.1:8080: address in use" in message


def test_stack_start_no_longer_takes_a_fixed_ready_timeout() -> None:
    import inspect

    params = inspect.signature(runner.Stack.start).parameters
    assert "ready_timeout_s" not in params
    assert params["readiness"].default == ReadinessPolicy()
    assert ReadinessPolicy().cap_s >= 180.0

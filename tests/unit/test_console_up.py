"""`pagerpatch up` starts the console beside the pipeline: on the configured port, or a free one when that is taken,
and not at all (saying why) when its settings would expose it without a token."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pagerpatch.ops.runner import Stack
from pagerpatch.settings import Settings
from pagerpatch.settings.console import ConsoleSettings


def stack(tmp_path: Path, **console: object) -> Stack:
    settings = Settings(home=tmp_path, console=ConsoleSettings(**console))  # type: ignore[arg-type]
    return Stack(settings, [], console=True)


def test_up_points_the_console_at_its_port_or_a_free_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        env: dict[str, str] = {}
        s = stack(tmp_path, port=busy)
        assert s._console_env(env)
        port = int(env["PAGERPATCH_CONSOLE__PORT"])
        assert port != busy and s.console_url == f"http://127.0.0.1:{port}"
        assert f"port {busy} is taken; using {port}" in capsys.readouterr().out
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    env = {}
    s = stack(tmp_path, port=free)
    assert s._console_env(env) and env["PAGERPATCH_CONSOLE__PORT"] == str(free)


def test_up_leaves_out_a_console_that_would_be_exposed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env: dict[str, str] = {}
    s = stack(tmp_path, host="0.0.0.0")
    assert not s._console_env(env) and env == {} and s.console_url == ""
    assert (
        "console not started" in capsys.readouterr().out
        and "PAGERPATCH_CONSOLE_TOKEN" in s.settings.console.startup_problem()
    )  # type: ignore[operator]

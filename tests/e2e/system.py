"""A whole pagerpatch (`pagerpatch up`: embedded NATS and Postgres, six service processes) for e2e tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from pagerpatch.ops.embedded import free_port

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dana Ops", "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Ops", "GIT_COMMITTER_EMAIL": "dana@example.com",
}  # fmt: skip


@dataclass
class System:
    home: Path
    proc: subprocess.Popen[bytes]
    ingest_url: str
    env: dict[str, str]
    log_path: Path
    children: list[int] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return str(json.loads((self.home / "runtime.json").read_text())["database_url"])

    @property
    def nats_url(self) -> str:
        return str(json.loads((self.home / "runtime.json").read_text())["nats_url"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "pagerpatch.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"pagerpatch {' '.join(args)} failed: {done.stdout}\n{done.stderr}")
        return done

    def post_alert(self, alert: dict[str, Any], delivery: str) -> httpx.Response:
        headers = {"x-pagerpatch-delivery": delivery}
        return httpx.post(f"{self.ingest_url}/webhooks/generic", json=alert, headers=headers, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start(home: Path, config: dict[str, Any], extra_env: dict[str, str] | None = None, timeout: float = 60) -> System:
    import yaml

    config_file = home / "pagerpatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "DATABASE_URL"}}
    env.update({
        "PAGERPATCH_HOME": str(home), "PAGERPATCH_CONFIG_FILE": str(config_file),
        "PAGERPATCH_INGEST_PORT": str(port), **(extra_env or {}),
    })  # fmt: skip
    log_path = home / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "pagerpatch.cli", "up"], env=env, stdout=log_path.open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    system = System(home=home, proc=proc, ingest_url=f"http://127.0.0.1:{port}", env=env, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"pagerpatch up exited with {proc.returncode}:\n{system.log()}")
        if "up in" in system.log():
            system.children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            return system
        time.sleep(0.2)
    stop(system)
    raise AssertionError(f"pagerpatch up did not come up in {timeout}s:\n{system.log()}")


def stop(system: System, timeout: float = 30) -> list[int]:
    """Ctrl-C, then the pids of every process `up` had started that is still alive (should be none)."""
    tree = set(system.children)
    try:
        tree |= {p.pid for p in psutil.Process(system.proc.pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        pass
    system.proc.send_signal(signal.SIGINT)
    system.proc.wait(timeout=timeout)
    time.sleep(0.5)
    alive = []
    for pid in tree:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def build_ledger_repo(dest: Path) -> tuple[str, str]:
    """A second, unrelated repository: returns (bad commit, traceback its regression really throws)."""
    (dest / "ledger").mkdir(parents=True)
    (dest / "tests").mkdir()
    (dest / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (dest / "ledger" / "__init__.py").write_text("")
    good = textwrap.dedent('''
        """Money helpers for the ledger."""


        def split(total_cents: int, parts: int) -> list[int]:
            """Split an amount into `parts` shares that differ by at most one cent."""
            if parts <= 0:
                raise ValueError("parts must be positive")
            base, rest = divmod(total_cents, parts)
            return [base + (1 if i < rest else 0) for i in range(parts)]


        def average(values: list[int]) -> float:
            """Mean of the values; 0.0 for none."""
            if not values:
                return 0.0
            return sum(values) / len(values)
    ''').lstrip()
    (dest / "ledger" / "money.py").write_text(good)
    (dest / "tests" / "test_money.py").write_text(
        textwrap.dedent("""
        from ledger.money import average, split


        def test_split_even():
            assert split(100, 4) == [25, 25, 25, 25]


        def test_split_remainder():
            assert split(101, 4) == [26, 25, 25, 25]


        def test_average():
            assert average([1, 2, 3]) == 2.0


        def test_average_of_nothing():
            assert average([]) == 0.0
    """).lstrip()
    )
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "ledger: money helpers")
    bad = good.replace("    if not values:\n        return 0.0\n", "")
    (dest / "ledger" / "money.py").write_text(bad)
    git(dest, "commit", "-q", "-am", "money: tidy average")
    bad_commit = git(dest, "rev-parse", "HEAD")
    (dest / "README.md").write_text("# ledger\n")
    git(dest, "add", "README.md")
    git(dest, "commit", "-q", "-m", "docs: readme")
    trace = subprocess.run([sys.executable, "-c", "from ledger.money import average; average([])"], cwd=dest,
                           capture_output=True, text=True).stderr  # fmt: skip
    assert "ZeroDivisionError" in trace, trace
    return bad_commit, trace

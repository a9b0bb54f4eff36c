"""An installed pagerpatch works from any directory: its entry point, the golden dataset and the demo scenario.

The package is installed with `uv pip install --target` into a temporary directory and run from another one with
PYTHONPATH pointing there; the CLI runs under `python -S`, so this checkout's editable install is not even loaded.
The demo then runs twice on one home and one running stack (each run must reach its own pull request), and Ctrl-C
of `up` must say one line per service, without FastStream's per-task chatter.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pagerpatch.ops.embedded import free_port
from pagerpatch.ops.supervisor import SERVICES

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PACKAGE_SOURCES = ("pyproject.toml", "schemas", "pagerpatch", "services")
SCENARIO = Path("pagerpatch") / "ops" / "demo_scenario"
GOLDEN = Path("services") / "triage" / "data" / "triage_golden.jsonl"


@dataclass
class Installed:
    target: Path  # where the package was installed (--target)
    workdir: Path  # the commands' cwd: not the checkout
    home: Path
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-S", "-m", "pagerpatch.cli", *args], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip

    def python(self, code: str) -> str:
        done = subprocess.run([sys.executable, "-S", "-c", code], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return done.stdout


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv builds and installs the package here (./dev puts it in .venv)")
    root = tmp_path_factory.mktemp("install")
    src, target, workdir = root / "src", root / "site", root / "elsewhere"
    # Built from a copy: building in the checkout would leave build/ and *.egg-info in a tree others work in.
    src.mkdir()
    for name in PACKAGE_SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", sys.executable, "--no-deps", "--target", str(target),
                    str(src)], check=True, capture_output=True, text=True, timeout=600)  # fmt: skip
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in {"NATS_URL", "DATABASE_URL", "PYTHONPATH"} and not k.startswith("PAGERPATCH_")}  # fmt: skip
    # The install first, then the environment's own dependencies (no .pth files are read under -S).
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    env.update({"PAGERPATCH_HOME": str(root / "home"), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    return Installed(target=target, workdir=workdir, home=root / "home", env=env)


def test_the_install_carries_the_entry_point_and_the_data(installed: Installed) -> None:
    (dist,) = installed.target.glob("pagerpatch-*.dist-info")
    entry_points = (dist / "entry_points.txt").read_text()
    assert "[pagerpatch.commands]\neval = services.triage.cli:eval_app" in entry_points

    assert files_under(installed.target / SCENARIO) == files_under(REPO / SCENARIO)  # dotfile included
    assert (installed.target / GOLDEN).read_bytes() == (REPO / GOLDEN).read_bytes()

    seen = installed.python(
        "import importlib.metadata as md, pagerpatch, services.triage.eval as ev\n"
        "from pagerpatch.ops.demo_repo import demo_source\n"
        "print(pagerpatch.__file__); print(ev.shipped_dataset()); print(demo_source())\n"
        "print(md.distribution('pagerpatch').locate_file(''))\n"
        "print(*[ep.value for ep in md.entry_points(group='pagerpatch.commands')])\n"
    ).splitlines()
    assert all(line.startswith(str(installed.target)) for line in seen[:4]), seen
    assert seen[4] == "services.triage.cli:eval_app"


def test_installed_eval_triage_passes_from_another_directory(installed: Installed) -> None:
    done = installed.cli("eval", "triage")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"triage eval: \d+ cases, \d+ alerts, \d+ labelled", done.stdout), done.stdout
    assert "class accuracy" in done.stdout and "confusion matrix" in done.stdout
    assert "could not be loaded" not in done.stderr


def test_installed_demo_runs_twice_on_one_stack_and_up_stops_in_one_line_per_service(installed: Installed) -> None:
    env = {**installed.env, "PAGERPATCH_INGEST_PORT": str(free_port())}
    log_path = installed.workdir / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen([sys.executable, "-S", "-m", "pagerpatch.cli", "up"], cwd=installed.workdir, env=env,
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "up in" not in log_path.read_text(errors="replace"):
            assert up.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)

        branches = []
        for run in (1, 2):  # the second run used to find only the first run's incident: "state: none"
            done = installed.cli("demo", "--timeout", "120")
            assert done.returncode == 0, f"demo run {run}:\n{done.stdout}\n{done.stderr}"
            assert "== pull request ready" in done.stdout and "reverts" in done.stdout, done.stdout
            found = re.search(r"branch {2}(pagerpatch/\S+)", done.stdout)
            assert found is not None, done.stdout
            branches.append(found.group(1))
        assert branches[0] != branches[1]

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:  # a failed assertion: still stop it cleanly, it owns NATS and Postgres
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
    log_text = log_path.read_text(errors="replace")
    assert "is being executed" not in log_text, log_text
    shutdown = log_text[log_text.index("stopping") :].splitlines()
    for name in SERVICES:
        mine = [line for line in shutdown if line.startswith(f"[{name}") and not line.startswith("[pagerpatch]")]
        assert [line.split("] ", 1)[1] for line in mine] == ["stopped"], shutdown
    assert shutdown[-1] == "[pagerpatch] stopped", shutdown

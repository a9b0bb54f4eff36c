"""Repository environments with the real bubblewrap sandbox: pagerpatch's site-packages and plugins never show, a
src-layout package is imported from the worktree under test, a set-up's generated files reach every worktree, the
set-up has the network only when allowed, runs once, and a failed one is reported and not run again."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pagerpatch.sandbox import (
    BackendName,
    BaseInterpreter,
    Environments,
    RepoEnvironment,
    Sandbox,
    SandboxResult,
    SetupFailed,
    UnsandboxedRunner,
    run_test_command,
)
from pagerpatch.settings import RepoConfig
from tests.support.sandbox import BWRAP, needs_bwrap

pytestmark = pytest.mark.integration


class CountingSandbox:
    """The real sandbox, counting the commands it runs (to see a set-up run once)."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.commands: list[str] = []

    @property
    def backend(self) -> BackendName:
        return self.inner.backend

    async def run(self, command: str, workdir: Path, **options: Any) -> SandboxResult:
        """Count `command`, then run it as given (the options pass through untouched)."""
        self.commands.append(command)
        return await self.inner.run(command, workdir, **options)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


async def inside(sandbox: Sandbox, env: RepoEnvironment, command: str, tree: Path) -> SandboxResult:
    return await sandbox.run(command, tree, timeout_s=120, env=env.variables(), mounts=env.mounts())


# ---------------------------------------------------------------- no set-up: pytest and nothing else


@needs_bwrap
async def test_without_setup_the_tests_get_pytest_and_nothing_of_pagerpatch(tmp_path: Path) -> None:
    tree = write(tmp_path / "tree", {
        "test_probe.py": """\
            import sys

            def test_isolated():
                assert "site-packages" not in sys.path[0]
                assert not any(".venv" in entry for entry in sys.path), sys.path
            """,
        "pyproject.toml": "[tool.pytest.ini_options]\nfilterwarnings = ['error']\n",
    })  # fmt: skip
    envs = Environments(tmp_path / "envs", BWRAP)
    env = await envs.ensure(RepoConfig(name="plain", path=str(tree)), tree)
    for module in ("pytest_asyncio", "pagerpatch", "hypothesis", "pytest_timeout", "faststream"):
        probe = await inside(BWRAP, env, f"python -c 'import {module}'", tree)
        assert probe.exit_code == 1 and f"No module named '{module}'" in probe.output, (module, probe.output)
    which = await inside(BWRAP, env, "command -v python; python -c 'import sys; print(sys.prefix)'", tree)
    assert which.output.split() == [str(env.path / "bin" / "python"), str(env.path)]
    # filterwarnings=error with pytest-asyncio loaded was an INTERNALERROR; here only pytest is there.
    report = await run_test_command(BWRAP, env, "python -m pytest -q", tree, timeout_s=120)
    assert report.result.passed, report.result.output
    assert report.tests is not None and dict(report.tests.outcomes) == {"test_probe.py::test_isolated": "passed"}
    assert not (tree / ".pytest_cache").exists() and sorted(p.name for p in tree.iterdir()) == [
        "pyproject.toml",
        "test_probe.py",
    ]  # the JUnit report went outside the tree


async def test_the_unsandboxed_runner_uses_the_environment_too(tmp_path: Path) -> None:
    runner = UnsandboxedRunner(allow_unsandboxed=True)
    tree = write(tmp_path / "tree", {"test_ok.py": "def test_ok():\n    pass\n"})
    env = await Environments(tmp_path / "envs", runner).ensure(RepoConfig(name="plain", path=str(tree)), tree)
    probe = await runner.run("python -c 'import pytest_asyncio'", tree, env=env.variables())
    assert probe.exit_code == 1 and "No module named 'pytest_asyncio'" in probe.output
    report = await run_test_command(runner, env, "python -m pytest -q", tree, timeout_s=120)
    assert report.result.passed and report.tests is not None and report.tests.passed == ["test_ok.py::test_ok"]


# ---------------------------------------------------------------- set-up: src layout, generated files, once


SRC_LAYOUT = {
    # Named like a package pagerpatch itself has installed: the installed copy must never be the one tested.
    "setup.py": """\
        from setuptools import find_packages, setup

        setup(name="unidiff", version="0.0", package_dir={"": "src"}, packages=find_packages("src"))
        """,
    "src/unidiff/__init__.py": "from unidiff._version import VERSION\n\nWHERE = 'worktree'\n",
    "tools/gen_version.py": """\
        from pathlib import Path

        Path("src/unidiff/_version.py").write_text("VERSION = 'generated'\\n")
        """,
    ".gitignore": "src/unidiff/_version.py\n",
    "tests/test_pkg.py": """\
        import unidiff

        def test_the_worktree_copy_is_imported():
            assert unidiff.WHERE == "worktree", unidiff.__file__
            assert unidiff.VERSION == "generated"
        """,
}
SETUP = "python tools/gen_version.py && python setup.py -q develop"


@needs_bwrap
async def test_a_src_layout_package_is_imported_from_each_worktree_and_its_generated_files_follow(
    tmp_path: Path,
) -> None:
    repo = RepoConfig(name="srcpkg", path=str(tmp_path), setup_command=SETUP)
    first = write(tmp_path / "first", SRC_LAYOUT)
    counting = CountingSandbox(BWRAP)
    envs = Environments(tmp_path / "envs", counting)
    env = await envs.ensure(repo, first)
    assert counting.commands == [SETUP]
    report = await run_test_command(BWRAP, env, "python -m pytest -q", first, timeout_s=120)
    assert report.result.passed, report.result.output

    # A later worktree (another commit, another path): the same environment, this tree's code, the generated file.
    second = write(tmp_path / "second", {**SRC_LAYOUT, "src/unidiff/__init__.py": "WHERE = 'second'\nVERSION = 0\n"})
    assert await envs.ensure(repo, second) == env and counting.commands == [SETUP]  # reused, not set up again
    report = await run_test_command(BWRAP, env, "python -m pytest -q", second, timeout_s=120)
    assert not report.result.passed and report.failed_tests == ["tests/test_pkg.py::test_the_worktree_copy_is_imported"]
    assert "assert 'second' == 'worktree'" in report.result.output

    third = write(tmp_path / "third", {k: v for k, v in SRC_LAYOUT.items()})
    report = await run_test_command(BWRAP, env, "python -m pytest -q", third, timeout_s=120)
    assert report.result.passed, report.result.output
    assert (third / "src/unidiff/_version.py").read_text() == "VERSION = 'generated'\n"  # from the overlay


@needs_bwrap
async def test_concurrent_requests_set_the_environment_up_once(tmp_path: Path) -> None:
    tree = write(tmp_path / "tree", {"requirements.txt": "", "test_ok.py": "def test_ok():\n    pass\n"})
    repo = RepoConfig(name="once", path=str(tree), setup_command="sleep 1 && python -c 'print(1)'")
    counting = CountingSandbox(BWRAP)
    first, second = Environments(tmp_path / "envs", counting), Environments(tmp_path / "envs", counting)
    made = await asyncio.gather(first.ensure(repo, tree), second.ensure(repo, tree), first.ensure(repo, tree))
    assert made[0] == made[1] == made[2] and len(counting.commands) == 1
    (tree / "requirements.txt").write_text("attrs\n")  # a changed dependency file: a new environment
    changed = await first.ensure(repo, tree)
    assert changed.key != made[0].key and len(counting.commands) == 2


@needs_bwrap
async def test_a_failed_setup_is_reported_with_its_output_and_not_run_again(tmp_path: Path) -> None:
    tree = write(tmp_path / "tree", {"test_ok.py": "def test_ok():\n    pass\n"})
    repo = RepoConfig(
        name="broken", path=str(tree), setup_command="echo resolving; echo 'ERROR: No matching dist'; exit 3"
    )
    counting = CountingSandbox(BWRAP)
    envs = Environments(tmp_path / "envs", counting)
    with pytest.raises(SetupFailed) as first:
        await envs.ensure(repo, tree)
    message = str(first.value)
    assert message.startswith("the set-up of broken failed (`echo resolving;") and "exit 3" in message
    assert message.endswith("resolving\nERROR: No matching dist")
    with pytest.raises(SetupFailed) as again:
        await Environments(tmp_path / "envs", counting).ensure(repo, tree)
    assert str(again.value) == message and len(counting.commands) == 1


@pytest.fixture
async def host_server() -> AsyncIterator[int]:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@needs_bwrap
@pytest.mark.parametrize("network", [False, True])
async def test_the_setup_has_the_network_only_when_the_repository_allows_it(
    tmp_path: Path, host_server: int, network: bool
) -> None:
    tree = write(tmp_path / "tree", {"test_ok.py": "def test_ok():\n    pass\n"})
    connect = f"python -c \"import socket; socket.create_connection(('127.0.0.1', {host_server}), timeout=3)\""
    repo = RepoConfig(name="net", path=str(tree), setup_command=connect, setup_network=network)
    envs = Environments(tmp_path / "envs", BWRAP)
    if network:
        env = await envs.ensure(repo, tree)
        probe = await inside(BWRAP, env, connect, tree)  # the tests themselves stay offline
        assert probe.exit_code == 1 and ("refused" in probe.output or "unreachable" in probe.output), probe.output
    else:
        with pytest.raises(SetupFailed, match="exit 1"):
            await envs.ensure(repo, tree)


@needs_bwrap
async def test_the_environment_is_read_only_to_the_tests(tmp_path: Path) -> None:
    tree = write(tmp_path / "tree", {"test_ok.py": "def test_ok():\n    pass\n"})
    env = await Environments(tmp_path / "envs", BWRAP).ensure(RepoConfig(name="ro", path=str(tree)), tree)
    probe = await inside(BWRAP, env, f"touch {env.path}/bin/planted", tree)
    assert probe.exit_code != 0 and not (env.path / "bin" / "planted").exists()
    shutil.rmtree(tree)


async def test_an_interpreter_that_cannot_make_a_venv_is_reported_not_waited_on(tmp_path: Path) -> None:
    broken = BaseInterpreter(Path("/bin/false"), Path("/nonexistent"), "3.11.7")
    runner = UnsandboxedRunner(allow_unsandboxed=True)
    envs = Environments(tmp_path / "envs", runner, interpreter=broken)
    tree = write(tmp_path / "tree", {"test_ok.py": "def test_ok():\n    pass\n"})
    with pytest.raises(SetupFailed, match="could not create the environment for plain"):
        await envs.ensure(RepoConfig(name="plain", path=str(tree)), tree)

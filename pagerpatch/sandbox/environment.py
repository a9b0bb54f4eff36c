"""A repository's own Python environment for its tests, which never shows pagerpatch's site-packages or plugins.

Each environment is a venv made by the base interpreter (never pagerpatch's venv python) under
`<root>/<repo>/<key>`, where the key hashes the set-up command, the Python version, the runner and the dependency
files at the base commit; it is made once and reused, under a lock so two fixgen replicas do not build it twice.
With a `setup_command` the set-up runs in the sandbox with the environment writable (network only when the
repository says so); files it generates in the working tree (`_version.py`, `*.egg-info`) are kept as an overlay
and copied into every later worktree. Without one, the environment gets only pytest and its own dependencies,
copied from pagerpatch's installation, so no other plugin (pytest-asyncio, hypothesis, timeout) is auto-loaded.
Inside bubblewrap the worktree always appears at `/workspace/<repo>`, so what the set-up recorded (an editable
install's path) points at the code under test in every run.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from pagerpatch.sandbox.port import Mounts, Sandbox, SandboxError, SandboxResult
from pagerpatch.settings import RepoConfig

__all__ = [
    "DEPENDENCY_FILES",
    "PYTEST_DISTRIBUTIONS",
    "WORKTREE_ROOT",
    "BaseInterpreter",
    "Environments",
    "RepoEnvironment",
    "SetupFailed",
    "dependency_files",
    "environment_key",
]

DEPENDENCY_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "uv.lock", "poetry.lock", "Pipfile.lock")
_REQUIREMENTS = re.compile(r"^requirements.*\.txt$")
# pytest and what it imports; anything else in pagerpatch's environment (plugins above all) stays invisible.
PYTEST_DISTRIBUTIONS = ("pytest", "pluggy", "iniconfig", "packaging", "pygments", "exceptiongroup", "tomli")
WORKTREE_ROOT = Path("/workspace")  # where a worktree appears inside the sandbox: /workspace/<repo>
SETUP_RETRY_AFTER_S = 3600.0  # a failed set-up is reported again, not re-run, for this long
MIN_SETUP_TIMEOUT_S = 900.0  # installing dependencies takes longer than most test suites
SETUP_TAIL_CHARS = 4000
_READY = ".pagerpatch-ready"
_PYTEST_DIR = "pytest-runtime"
_OVERLAY_DIR = "overlay"
_OVERLAY_MAX_FILES = 5000
_OVERLAY_MAX_BYTES = 100 * 1024 * 1024
_SKIPPED_DIRS = frozenset(
    {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".venv", "node_modules"}
    | {"build"}
)
_VENV_TIMEOUT_S = 300.0
_LOCK_POLL_S = 0.2


class SetupFailed(Exception):
    """The repository's set-up command failed: a verdict about the repository (reported, not retried at once)."""


@dataclass(frozen=True)
class BaseInterpreter:
    """The Python installation environments are made from: the base of pagerpatch's venv, not the venv."""

    executable: Path
    prefix: Path
    version: str

    @classmethod
    def current(cls) -> BaseInterpreter:
        executable = Path(getattr(sys, "_base_executable", "") or sys.executable)
        return cls(executable, Path(sys.base_prefix).resolve(), platform.python_version())

    def visible_dirs(self) -> tuple[Path, ...]:
        """What the sandbox must bind read-only for this interpreter to run (nothing under the bound /usr)."""
        found: list[Path] = []
        for path in (self.prefix, self.executable.resolve().parent.parent):
            if not path.is_relative_to("/usr") and path not in found and path != Path("/"):
                found.append(path)
        return tuple(found)


@dataclass(frozen=True)
class RepoEnvironment:
    """One ready environment: where it is, its key, and how a sandboxed run uses it."""

    repo: str
    path: Path
    key: str
    interpreter: BaseInterpreter

    @property
    def workdir_at(self) -> Path:
        return WORKTREE_ROOT / _component(self.repo)

    @property
    def overlay(self) -> Path:
        return self.path / _OVERLAY_DIR

    @property
    def ready(self) -> bool:
        return (self.path / _READY).is_file()

    def variables(self) -> dict[str, str]:
        """`python` and the scripts are the environment's; no user site, no PYTHONPATH."""
        return {
            "PATH": os.pathsep.join([str(self.path / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
            "VIRTUAL_ENV": str(self.path),
            "PYTHONNOUSERSITE": "1",
        }

    def mounts(
        self,
        *,
        read_only: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        network: bool = False,
        setup: bool = False,
    ) -> Mounts:
        """The environment read-only (writable during its set-up), its interpreter, and the stable tree path."""
        env = (self.path,)
        return Mounts(
            read_only=(*self.interpreter.visible_dirs(), *(() if setup else env), *read_only),
            writable=(*(env if setup else ()), *writable),
            network=network,
            workdir_at=self.workdir_at,
            host_python=False,
        )

    def apply_overlay(self, tree: Path) -> int:
        """Copy what the set-up generated into `tree`, where the worktree lacks it; how many files were copied."""
        copied = 0
        for relative in _files_under(self.overlay):
            target = tree / relative
            if target.exists() or target.is_symlink():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.overlay / relative, target, follow_symlinks=False)
            copied += 1
        return copied


def _component(name: str) -> str:
    """A repository name as one path component (names are `[A-Za-z0-9_.-]+`, so only `.` and `..` need care)."""
    return name if name not in (".", "..") else "_" * len(name)


def dependency_files(tree: Path) -> dict[str, str]:
    """The sha256 of each dependency file at the top of `tree` (what decides whether an environment is current)."""
    names = [*DEPENDENCY_FILES, *sorted(p.name for p in tree.iterdir() if _REQUIREMENTS.match(p.name))]
    digests: dict[str, str] = {}
    for name in names:
        path = tree / name
        if path.is_file():
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def environment_key(
    *, setup_command: str | None, python_version: str, files: Mapping[str, str], backend: str, pytest: str | None
) -> str:
    """A short stable hash of everything an environment is made from."""
    material = {
        "setup_command": setup_command,
        "python": python_version,
        "files": dict(sorted(files.items())),
        "backend": backend,  # an unsandboxed set-up records host paths, a sandboxed one /workspace/<repo>
        "pytest": pytest if setup_command is None else None,  # the copied pytest, when it is ours
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _pytest_version() -> str | None:
    try:
        return importlib.metadata.version("pytest")
    except importlib.metadata.PackageNotFoundError:
        return None


class Environments:
    """Makes and caches repository environments under `root`; set-ups run in `sandbox`."""

    def __init__(
        self,
        root: Path,
        sandbox: Sandbox,
        *,
        interpreter: BaseInterpreter | None = None,
        setup_timeout_s: float = MIN_SETUP_TIMEOUT_S,
    ) -> None:
        self.root = root.resolve()
        self.sandbox = sandbox
        self.interpreter = interpreter or BaseInterpreter.current()
        self.setup_timeout_s = setup_timeout_s
        self._locks: dict[Path, asyncio.Lock] = {}

    async def ensure(self, repo: RepoConfig, tree: Path) -> RepoEnvironment:
        """The environment for `repo` at the commit checked out in `tree` (made now when missing).

        Raises SetupFailed when the set-up command fails (or failed within the last hour), SandboxError when the
        environment cannot be made for a reason of ours.
        """
        files = await asyncio.to_thread(dependency_files, tree)
        key = environment_key(
            setup_command=repo.setup_command,
            python_version=self.interpreter.version,
            files=files,
            backend=self.sandbox.backend,
            pytest=_pytest_version(),
        )
        env = RepoEnvironment(repo.name, self.root / _component(repo.name) / key, key, self.interpreter)
        if env.ready:
            return env
        async with self._locked(env):
            if env.ready:  # another replica (or task) made it while we waited
                return env
            failure = _recent_failure(self._failure_path(env))
            if failure is not None:
                raise SetupFailed(failure)
            await asyncio.to_thread(self._create_venv, env, with_pip=repo.setup_command is not None)
            if repo.setup_command is not None:
                await self._set_up(repo, repo.setup_command, env, tree)
            await asyncio.to_thread(_add_pytest, env)
            (env.path / _READY).write_text(json.dumps({"key": key, "made_at": time.time()}))
        return env

    # -- internals

    def _failure_path(self, env: RepoEnvironment) -> Path:
        return env.path.with_name(env.key + ".failed")

    @asynccontextmanager
    async def _locked(self, env: RepoEnvironment) -> AsyncIterator[None]:
        """One builder per environment: an asyncio lock in this process, an flock across processes."""
        lock = self._locks.setdefault(env.path, asyncio.Lock())
        async with lock:
            env.path.parent.mkdir(parents=True, exist_ok=True)
            with env.path.with_name(env.key + ".lock").open("a") as handle:
                while True:  # polled, so a cancelled wait never leaves a thread holding the lock
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(_LOCK_POLL_S)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _create_venv(self, env: RepoEnvironment, *, with_pip: bool) -> None:
        """A fresh venv of the base interpreter at `env.path` (what an interrupted build left is removed first).

        The interpreter refusing is SetupFailed (reported, not waited on); failing to start it is SandboxError.
        """
        shutil.rmtree(env.path, ignore_errors=True)
        argv = [str(self.interpreter.executable), "-m", "venv", *(() if with_pip else ("--without-pip",))]
        clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8"}
        try:
            done = subprocess.run(
                [*argv, str(env.path)], env=clean, capture_output=True, text=True, timeout=_VENV_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxError(f"could not create the environment for {env.repo}: {exc}") from exc
        if done.returncode != 0:  # a broken interpreter install (no ensurepip, say): waiting will not mend it
            output = (done.stderr or done.stdout).strip()[-SETUP_TAIL_CHARS:]
            raise SetupFailed(
                f"`{' '.join(argv)}` could not create the environment for {env.repo} at {env.path}: {output}"
            )

    async def _set_up(self, repo: RepoConfig, command: str, env: RepoEnvironment, tree: Path) -> None:
        """Run the set-up in the sandbox; keep what it generated in the tree; a failure is recorded and raised."""
        before = await asyncio.to_thread(lambda: set(_files_under(tree)))
        variables = {**env.variables(), "UV_PROJECT_ENVIRONMENT": str(env.path)}  # `uv sync` fills our venv
        timeout = max(self.setup_timeout_s, repo.test_timeout_s or 0.0)
        mounts = env.mounts(network=repo.setup_network, setup=True)
        result = await self.sandbox.run(command, tree, timeout_s=timeout, env=variables, mounts=mounts)
        if not result.passed:
            reason = setup_failure(repo.name, result)
            self._failure_path(env).write_text(json.dumps({"at": time.time(), "reason": reason}))
            shutil.rmtree(env.path, ignore_errors=True)
            raise SetupFailed(reason)
        await asyncio.to_thread(_capture_overlay, tree, before, env.overlay)


def setup_failure(repo: str, result: SandboxResult) -> str:
    """Why the set-up failed, with the tail of its output (what a person needs to fix the command)."""
    how = f"timed out after {result.duration_s:.0f}s" if result.timed_out else f"exit {result.exit_code}"
    tail = result.output.strip()[-SETUP_TAIL_CHARS:]
    return (
        f"the set-up of {repo} failed (`{result.command}`, {how}); it is not run again for an hour unless "
        f"setup_command or the dependency files change. Output:\n{tail}"
    )


def _recent_failure(path: Path) -> str | None:
    """The reason recorded by a set-up that failed within SETUP_RETRY_AFTER_S, if any."""
    with suppress(OSError, ValueError, TypeError, KeyError):
        record = json.loads(path.read_text())
        if time.time() - float(record["at"]) < SETUP_RETRY_AFTER_S:
            return str(record["reason"])
    return None


def _site_packages(env: Path, version: str) -> Path:
    major, minor = version.split(".")[:2]
    return env / "lib" / f"python{major}.{minor}" / "site-packages"


def _add_pytest(env: RepoEnvironment) -> None:
    """Unless the set-up installed pytest, copy pytest and its dependencies (only those) into the environment."""
    site = _site_packages(env.path, env.interpreter.version)
    if (site / "pytest").exists() or (site / "_pytest").exists():
        return
    target = env.path / _PYTEST_DIR
    target.mkdir(exist_ok=True)
    for name in PYTEST_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        base = Path(str(dist.locate_file("")))
        for top in sorted({Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}):
            source = base / top
            if top == "__pycache__" or not source.exists():
                continue
            if source.is_dir():
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(source, target / top, symlinks=True, ignore=ignore, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target / top)
    site.mkdir(parents=True, exist_ok=True)
    (site / "_pagerpatch_pytest.pth").write_text(f"{target}\n")


def _files_under(root: Path) -> Iterator[Path]:
    """Relative paths of the files under `root`, skipping VCS, caches and virtualenvs."""
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
        here = Path(folder).relative_to(root)
        for name in files:
            yield here / name


def _capture_overlay(tree: Path, before: set[Path], overlay: Path) -> None:
    """Keep the files the set-up created in `tree` (generated modules, egg-info), within a size budget."""
    count = size = 0
    for relative in sorted(set(_files_under(tree)) - before):
        source = tree / relative
        size += source.lstat().st_size
        count += 1
        if count > _OVERLAY_MAX_FILES or size > _OVERLAY_MAX_BYTES:
            break
        (overlay / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, overlay / relative, follow_symlinks=False)

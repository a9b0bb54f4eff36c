"""The default runner: bubblewrap namespaces (no network, read-only system), and the probe that checks they work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from pagerpatch.sandbox.port import BackendName, Mounts, SandboxError, SandboxResult, SandboxUnavailable
from pagerpatch.sandbox.process import LimitedRunner, checked_workdir, read_status, result_of

_PROBE_TIMEOUT_S = 15.0

UNSANDBOXED_HINT = (
    "To run tests WITHOUT isolation instead (trusted repositories only), set both "
    "PAGERPATCH_SANDBOX__BACKEND=unsandboxed and PAGERPATCH_SANDBOX__ALLOW_UNSANDBOXED=true."
)
_INSTALL_HINT = (
    "Install it with `apt install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap` (Fedora/RHEL). "
    + UNSANDBOXED_HINT
)

_NAMESPACE_ARGS = (
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)
_MASKED_FILES = ("/etc/shadow", "/etc/gshadow")


def _system_args() -> list[str]:
    """Read-only host system: /usr, the merged-/usr symlinks (or dirs) and /etc, with fresh /proc /dev /tmp."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    if Path("/etc").is_dir():
        args += ["--ro-bind", "/etc", "/etc"]
        for secret in _MASKED_FILES:
            if os.path.lexists(secret):
                args += ["--ro-bind", "/dev/null", secret]
    return [*args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def _interpreter_dirs() -> list[Path]:
    """Where this Python lives (venv and base install) when it is outside the read-only /usr."""
    found: list[Path] = []
    for raw in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        path = Path(raw).resolve()
        if path.is_dir() and not path.is_relative_to("/usr") and path not in found:
            found.append(path)
    return found


def _resolver_dirs(network: bool) -> list[Path]:
    """With the network on, where /etc/resolv.conf really lives when it points outside /etc (systemd-resolved)."""
    if not network:
        return []
    resolv = Path("/etc/resolv.conf").resolve()
    return [resolv.parent] if resolv.exists() and not resolv.is_relative_to("/etc") else []


def _probe_error(bwrap: str) -> str | None:
    """Run a trivial command in the same namespaces; None when it works, else what went wrong."""
    argv = [bwrap, "--unshare-net", *_NAMESPACE_ARGS, *_system_args(), "--", "/bin/sh", "-c", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"


@lru_cache(maxsize=8)
def _cached_probe(bwrap: str) -> str | None:
    return _probe_error(bwrap)


class BubblewrapSandbox(LimitedRunner):
    """No network, read-only system, the working tree writable at its own path, nothing else of the host."""

    backend: BackendName = "bubblewrap"

    def __init__(
        self,
        *,
        bwrap_path: str | Path | None = None,
        timeout_s: float = 300.0,
        memory_mb: int = 2048,
        output_limit_bytes: int = 64_000,
        ro_binds: Sequence[Path] = (),
        cpu_s: int | None = None,
        max_processes: int | None = 512,
        cgroups: bool = True,
    ) -> None:
        super().__init__(timeout_s=timeout_s, memory_mb=memory_mb, output_limit_bytes=output_limit_bytes,
                         cpu_s=cpu_s, max_processes=max_processes, cgroups=cgroups)  # fmt: skip
        self.bwrap_path = shutil.which("bwrap") if bwrap_path is None else str(bwrap_path)
        self.ro_binds = tuple(Path(p).resolve() for p in ro_binds)

    def unavailable_reason(self) -> str | None:
        """Why this sandbox cannot run (missing bwrap, namespaces refused), or None. The probe is cached."""
        path = self.bwrap_path
        if path is None or not os.access(path, os.X_OK):
            where = f"at {path}" if path else "on PATH"
            return (
                "bubblewrap (bwrap) is required to run repository tests in a sandbox "
                f"but was not found {where}. {_INSTALL_HINT}"
            )
        error = _cached_probe(path)
        if error is None:
            return None
        return (
            f"bubblewrap is installed at {path} but cannot create the sandbox namespaces: {error}. "
            "Typical causes: unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces>0; on Ubuntu 24.04 kernel.apparmor_restrict_unprivileged_userns=0 or an "
            "AppArmor profile for bwrap), or a container runtime blocks unshare/mount (run the container with "
            "CAP_SYS_ADMIN or a seccomp profile that allows them). " + UNSANDBOXED_HINT
        )

    def available(self) -> bool:
        return self.unavailable_reason() is None

    def argv(
        self,
        command: str,
        workdir: Path,
        *,
        status_fd: int | None = None,
        mounts: Mounts | None = None,
        timeout_s: float | None = None,
    ) -> list[str]:
        """The full bwrap command line for `command` run from `workdir` (an absolute, existing directory)."""
        assert self.bwrap_path is not None
        seen = mounts or Mounts()
        inside = seen.workdir_at or workdir
        # (flag, host path, path inside); parents before children so a nested bind (venv inside the tree, tree
        # inside a prefix) wins.
        binds: list[tuple[str, Path, Path]] = [
            ("--ro-bind", p, p) for p in (*(_interpreter_dirs() if seen.host_python else ()), *self.ro_binds)
        ]
        binds += [("--ro-bind", p, p) for p in seen.read_only]
        binds += [("--bind", p, p) for p in seen.writable]
        binds += [("--ro-bind", p, p) for p in _resolver_dirs(seen.network)]
        binds.append(("--bind", workdir, inside))
        binds.sort(key=lambda bind: len(bind[2].parts))
        network = () if seen.network else ("--unshare-net",)
        args = [self.bwrap_path, *network, *_NAMESPACE_ARGS, *_system_args()]
        for flag, host, path in binds:
            args += [flag, str(host), str(path)]
        args += ["--chdir", str(inside)]
        if status_fd is not None:
            args += ["--json-status-fd", str(status_fd)]
        return [*args, "--", *self.limit_prefix(timeout_s), "/bin/sh", "-c", command]

    async def run(
        self,
        command: str,
        workdir: Path,
        *,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        mounts: Mounts | None = None,
    ) -> SandboxResult:
        """Run `command` with /bin/sh inside the sandbox; raises SandboxError when bwrap itself fails."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise SandboxUnavailable(reason)
        tree = checked_workdir(workdir)
        for path in (*(mounts.read_only if mounts else ()), *(mounts.writable if mounts else ())):
            if not path.exists():
                raise SandboxError(f"{path} is to be bound into the sandbox but does not exist")
        status_read, status_write = os.pipe()
        try:
            try:
                argv = self.argv(command, tree, status_fd=status_write, mounts=mounts, timeout_s=timeout_s)
                done = await self.launch(argv, tree, timeout_s=timeout_s, env=env, pass_fds=(status_write,))
            finally:
                os.close(status_write)
            status = read_status(status_read)
        finally:
            os.close(status_read)
        if done.timed_out:
            return result_of(command, done, None, self.backend)
        exit_code = status.get("exit-code")
        if not isinstance(exit_code, int):  # the child never ran: bwrap's own setup failed
            raise SandboxError(f"bubblewrap could not start the command: {done.output.render().strip()}")
        return result_of(command, done, exit_code, self.backend)

"""Test-side git: a fixed identity and date, no user or system config; and small repositories built commit by commit."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pagerpatch.traces.stacktrace import ParsedTrace, parse_trace


def git(repo: Path, *args: str, date: str = "2024-03-01T12:00:00+01:00", who: str = "Dana") -> str:
    """Test-side git with a fixed identity and no user config."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": who,
        "GIT_AUTHOR_EMAIL": f"{who.lower()}@example.com",
        "GIT_COMMITTER_NAME": who,
        "GIT_COMMITTER_EMAIL": f"{who.lower()}@example.com",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@dataclass
class Repo:
    """A test repository whose commits get strictly increasing, explicit dates."""

    path: Path
    count: int = 0

    @classmethod
    def init(cls, path: Path, branch: str = "main") -> Repo:
        """A new, empty repository at `path` whose first branch is `branch`."""
        path.mkdir()
        repo = cls(path)
        repo.git("init", "-q", f"--initial-branch={branch}")
        return repo

    def git(self, *args: str, date: str = "2024-03-01T12:00:00+01:00", who: str = "Dana") -> str:
        return git(self.path, *args, date=date, who=who)

    def commit(self, files: dict[str, str], message: str, who: str = "Dana") -> str:
        for rel, text in files.items():
            (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.path / rel).write_text(text)
        self.count += 1
        date = f"2024-03-{self.count:02d}T12:00:00+01:00"
        self.git("add", "--all")
        self.git("commit", "-q", "-m", message, date=date, who=who)
        return self.git("rev-parse", "HEAD").strip()

    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        """`code` run by this interpreter in the repository's working tree."""
        return subprocess.run(
            [sys.executable, "-B", "-c", code], cwd=self.path, capture_output=True, text=True, timeout=60, check=False
        )

    def trace(self, code: str) -> ParsedTrace:
        """The real traceback `code` raises at the checked-out commit, parsed."""
        proc = self.run(code)
        assert proc.returncode != 0, proc.stdout
        parsed = parse_trace(proc.stderr)
        assert parsed is not None, proc.stderr
        return parsed

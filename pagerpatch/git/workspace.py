"""Git workspaces: a cached clone per repository and detached per-incident worktrees (subprocess git only).

Every git call goes through `git`, which has a timeout, never prompts, ignores a caller's GIT_DIR and
raises `GitError` carrying git's stderr. Paths are passed as separate arguments, so spaces are safe.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from unidiff.patch import PatchSet

GIT_TIMEOUT_S = 120.0
DEFAULT_AUTHOR_NAME = "pagerpatch"
DEFAULT_AUTHOR_EMAIL = "pagerpatch@localhost"

# Variables a parent process (a git hook, another tool) may have set that would redirect our git calls.
_LEAKY_GIT_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")
HEX_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
# git's words for "someone else holds a lock or moved a ref under me", or for a working tree that is not there (a
# file system hiccup, a clean-up racing us): worth retrying in a fresh worktree, not a verdict on the commit.
_CONTENTION = re.compile(
    r"couldn't set '|cannot lock ref|Unable to create '.*\.lock'|unable to write new index"
    r"|cannot create directory at|No such file or directory",
    re.I,
)
# git's words for "no such branch, tag or commit": a verdict on the ref that no retry will change.
_MISSING_REF = re.compile(
    r"Needed a single revision|unknown revision|bad revision|invalid reference|not a valid object name|bad object",
    re.I,
)
_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_RECORD, _FIELD = "\x1e", "\x1f"
_COMMIT_FORMAT = _FIELD.join(["%H", "%P", "%an", "%ae", "%aI", "%cI", "%s"])


class GitError(Exception):
    """A git command failed; `stderr` is git's own explanation."""

    def __init__(self, args: tuple[str, ...], returncode: int | None, stderr: str) -> None:
        self.command = ("git", *args)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {self.stderr}")

    @property
    def contention(self) -> bool:
        """A lock or ref race with a concurrent git process, or a vanished working tree: retrying is the answer."""
        return bool(_CONTENTION.search(self.stderr))

    @property
    def missing_ref(self) -> bool:
        """The branch, tag or commit asked for does not exist: a terminal answer, unlike a lock race or a timeout."""
        return not self.contention and bool(_MISSING_REF.search(self.stderr))


@dataclass(frozen=True, slots=True)
class GitIdentity:
    """Who pagerpatch's own commits (reverts, fixes) are made as."""

    name: str = DEFAULT_AUTHOR_NAME
    email: str = DEFAULT_AUTHOR_EMAIL

    def config_args(self) -> tuple[str, ...]:
        return ("-c", f"user.name={self.name}", "-c", f"user.email={self.email}", "-c", "commit.gpgsign=false")


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """The facts about a commit that diagnosis and pull requests need."""

    sha: str
    parents: tuple[str, ...]
    author: str
    author_email: str
    authored_at: datetime
    committed_at: datetime
    subject: str

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True, slots=True)
class BlameInfo:
    """The commit that last changed one line, as `git blame --porcelain` reports it."""

    sha: str
    author: str
    author_email: str
    summary: str
    authored_at: datetime
    committed_at: datetime
    original_file: str
    original_line: int
    boundary: bool = False

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True, slots=True)
class RevertResult:
    """Outcome of `git revert`: the new commit, or why it could not be made (the worktree is left clean)."""

    ok: bool
    reverted: str
    commit: str | None = None
    conflicted_files: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class DiffStats:
    """Size of a change, as policy checks and pull requests report it."""

    files: tuple[str, ...]
    added: int
    removed: int


def git(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = GIT_TIMEOUT_S,
) -> str:
    """Run one git command in `cwd` and return its stdout; raise GitError on failure or timeout."""
    # The child inherits the process environment (PATH, HOME, proxies); only git-specific knobs change here.
    full_env = {k: v for k, v in os.environ.items() if k not in _LEAKY_GIT_VARS}
    full_env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_PAGER": "cat"})
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(args, None, f"timed out after {timeout:.0f}s") from exc
    except OSError as exc:  # git missing, cwd gone
        raise GitError(args, None, str(exc)) from exc
    if proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def _parse_commit_record(record: str) -> CommitInfo:
    sha, parents, author, email, authored, committed, subject = record.split(_FIELD, 6)
    return CommitInfo(
        sha=sha,
        parents=tuple(parents.split()),
        author=author,
        author_email=email,
        authored_at=datetime.fromisoformat(authored),
        committed_at=datetime.fromisoformat(committed),
        subject=subject.rstrip("\n"),
    )


def _epoch_with_tz(epoch: str, tz: str) -> datetime:
    """git's `1717400000` + `+0200` as an aware datetime in the author's own offset."""
    offset = UTC
    match = re.fullmatch(r"([+-])(\d\d)(\d\d)", tz.strip())
    if match:
        delta = timedelta(hours=int(match[2]), minutes=int(match[3]))
        offset = timezone(-delta if match[1] == "-" else delta)
    return datetime.fromtimestamp(int(epoch), tz=UTC).astimezone(offset)


# ---------------------------------------------------------------- reading a workspace


def resolve(path: Path, ref: str) -> str:
    """Full sha of the commit `ref` names in the repository at `path`."""
    return git(path, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").strip()


def commit_exists(path: Path, sha: str) -> bool:
    """True when `sha` names a commit present in the repository."""
    try:
        git(path, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitError:
        return False
    return True


def commit_info(path: Path, sha: str) -> CommitInfo:
    """Author, dates, parents and subject of one commit."""
    out = git(path, "show", "-s", f"--format={_COMMIT_FORMAT}", "--end-of-options", f"{sha}^{{commit}}")
    return _parse_commit_record(out.rstrip("\n"))


def commits_since(path: Path, base: str, head: str = "HEAD") -> int:
    """How many commits `head` has that `base` has not (0 when base is head)."""
    return int(git(path, "rev-list", "--count", f"{base}..{head}").strip())


def list_files(path: Path, rev: str | None = None) -> set[str]:
    """Repository-relative paths of tracked files: the index, or the tree of `rev` when given."""
    if rev is None:
        out = git(path, "ls-files", "-z")
    else:
        out = git(path, "ls-tree", "-r", "-z", "--name-only", "--end-of-options", rev)
    return {name for name in out.split("\0") if name}


def read_file(path: Path, file: str, rev: str = "HEAD") -> str:
    """Text of `file` as committed at `rev`."""
    return git(path, "show", f"{rev}:{file}")


def blame_line(path: Path, file: str, line: int, rev: str = "HEAD", ignore_revs: Collection[str] = ()) -> BlameInfo:
    """The commit that last changed `file:line` as of `rev`, ignoring whitespace and following moved or copied code
    (`git blame -w -M -C --porcelain -L n,n`); commits in `ignore_revs` (full shas) are looked through, as
    `--ignore-revs-file` does with a repository's `.git-blame-ignore-revs`."""
    ignored = sorted({sha.lower() for sha in ignore_revs if _FULL_SHA.match(sha.lower())})
    if not ignored:
        out = git(path, "blame", "-w", "-M", "-C", "--porcelain", "-L", f"{line},{line}", rev, "--", file)
    else:
        # git dies on a malformed line in an ignore file, so it only ever sees the full shas written here
        with tempfile.NamedTemporaryFile("w", prefix="pagerpatch-ignore-revs-", suffix=".txt") as listing:
            listing.write("".join(f"{sha}\n" for sha in ignored))
            listing.flush()
            out = git(path, "blame", "-w", "-M", "-C", "--porcelain", "--ignore-revs-file", listing.name,
                      "-L", f"{line},{line}", rev, "--", file)  # fmt: skip
    lines = out.splitlines()
    if not lines:
        raise GitError(("blame", file), 0, f"no blame output for {file}:{line}")
    head = lines[0].split()
    headers: dict[str, str] = {}
    boundary = False
    for entry in lines[1:]:
        if entry.startswith("\t"):
            break
        key, _, value = entry.partition(" ")
        if key == "boundary":
            boundary = True
        headers[key] = value
    return BlameInfo(
        sha=head[0],
        author=headers.get("author", ""),
        author_email=headers.get("author-mail", "").strip("<>"),
        summary=headers.get("summary", ""),
        authored_at=_epoch_with_tz(headers.get("author-time", "0"), headers.get("author-tz", "+0000")),
        committed_at=_epoch_with_tz(headers.get("committer-time", "0"), headers.get("committer-tz", "+0000")),
        original_file=headers.get("filename", file),
        original_line=int(head[1]),
        boundary=boundary,
    )


def log_line_history(path: Path, file: str, line: int, rev: str = "HEAD", max_count: int = 10) -> list[CommitInfo]:
    """Commits that touched `file:line` (as numbered at `rev`), newest first (`git log -L n,n:file`)."""
    return log_range_history(path, file, line, line, rev, max_count)


def log_range_history(
    path: Path, file: str, start: int, end: int, rev: str = "HEAD", max_count: int = 10
) -> list[CommitInfo]:
    """Commits that touched lines `start`..`end` of `file` (as numbered at `rev`), newest first (`git log -L`)."""
    out = git(
        path,
        "log",
        f"--max-count={max_count}",
        f"--format={_RECORD}{_COMMIT_FORMAT}",
        f"-L{start},{end}:{file}",
        rev,
    )
    # -L always appends the line's diff; only our record-separated header lines are commits.
    # (split on "\n" only: str.splitlines() would also split on the \x1e/\x1f separators)
    return [_parse_commit_record(raw[1:]) for raw in out.split("\n") if raw.startswith(_RECORD)]


def changed_files(path: Path, sha: str) -> set[str]:
    """Repository-relative paths a commit changed (against its first parent; every file for a root commit)."""
    out = git(path, "diff-tree", "-r", "--root", "--diff-merges=first-parent", "--no-commit-id", "--name-only", "-z",
              "--no-renames", "--end-of-options", sha)  # fmt: skip
    return {name for name in out.split("\0") if name}


def head_branch(path: Path) -> str | None:
    """The branch HEAD names (a mirror clone's HEAD is its origin's default branch); None when HEAD is detached."""
    try:
        return git(path, "symbolic-ref", "--quiet", "--short", "HEAD").strip() or None
    except GitError:
        return None


# ---------------------------------------------------------------- changing a workspace


def revert(path: Path, sha: str, identity: GitIdentity | None = None) -> RevertResult:
    """`git revert --no-edit sha` in the worktree at `path`; on conflict, abort and say which files clashed.

    Lock contention with a concurrent git process, or a working tree that vanished under git, is raised as `GitError`
    (the caller retries in a fresh worktree), not reported as a failed revert: only a conflict or git's own refusal
    (for example an empty revert) is a verdict on the commit.
    """
    ident = identity or GitIdentity()
    mainline = ("-m", "1") if len(commit_info(path, sha).parents) > 1 else ()
    try:
        git(path, *ident.config_args(), "revert", "--no-edit", *mainline, sha)
    except GitError as exc:
        conflicted = _conflicted_files(path)
        try:
            git(path, "revert", "--abort")
        except GitError:
            if conflicted:  # a half-applied revert without sequencer state: put the worktree back
                git(path, "reset", "--hard", "HEAD")
        if conflicted:
            reason = f"reverting {sha[:7]} conflicts with later changes in: {', '.join(conflicted)}"
        elif exc.contention:
            raise
        else:
            reason = f"git revert of {sha[:7]} failed: {exc.stderr}"
        return RevertResult(ok=False, reverted=sha, conflicted_files=conflicted, error=reason)
    return RevertResult(ok=True, reverted=sha, commit=resolve(path, "HEAD"))


def _conflicted_files(path: Path) -> tuple[str, ...]:
    try:
        out = git(path, "diff", "--name-only", "-z", "--diff-filter=U")
    except GitError:
        return ()
    return tuple(sorted(name for name in out.split("\0") if name))


def diff(path: Path, base: str, head: str = "HEAD") -> str:
    """Unified diff from `base` to `head`, as a pull request would show it."""
    return git(path, "diff", "--no-color", "--no-ext-diff", "--no-renames", base, head, "--")


def patch_stats(patch: str) -> DiffStats:
    """Files touched and lines added/removed by a unified diff."""
    patch_set = PatchSet(patch)
    files = tuple(sorted({f.path for f in patch_set}))
    return DiffStats(files=files, added=int(patch_set.added), removed=int(patch_set.removed))


def diff_stats(path: Path, base: str, head: str = "HEAD") -> DiffStats:
    """`patch_stats` of the diff from `base` to `head`."""
    return patch_stats(diff(path, base, head))

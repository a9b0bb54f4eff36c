"""Git workspaces against real git repositories in tmp_path."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pagerpatch.git import workspace
from pagerpatch.git.workspace import GitError
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.settings import RepoConfig
from tests.support.git import git

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

_CLOCK = itertools.count()


def _next_date() -> str:
    """Strictly increasing commit dates, one hour apart, in a fixed +01:00 zone."""
    moment = datetime(2024, 3, 1, 12, tzinfo=timezone(timedelta(hours=1))) + timedelta(hours=next(_CLOCK))
    return moment.isoformat()


def commit(repo: Path, files: dict[str, str], message: str, who: str = "Dana") -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", message, date=_next_date(), who=who)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    repo = tmp_path / "source repo"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    return repo


@pytest.fixture
def history(source: Path) -> dict[str, str]:
    """Three commits touching `app/calc.py`; the second changes line 2."""
    return {
        "first": commit(source, {"app/calc.py": "def add(a, b):\n    return a + b\n", "README.md": "calc\n"}, "init"),
        "second": commit(source, {"app/calc.py": "def add(a, b):\n    return b + a\n"}, "calc: swap operands", "Eve"),
        "third": commit(
            source, {"app/calc.py": "def add(a, b):\n    return b + a\n\n\ndef neg(a):\n    return -a\n"}, "neg"
        ),
    }


@pytest.fixture
def ws(tmp_path: Path) -> Workspaces:
    return Workspaces(tmp_path / "pagerpatch home" / "workspaces")


@pytest.fixture
def repo_cfg(source: Path) -> RepoConfig:
    return RepoConfig(name="calc", path=str(source))


def test_cached_clone_is_a_mirror_that_follows_the_source(
    ws: Workspaces, repo_cfg: RepoConfig, source: Path, history: dict[str, str]
) -> None:
    clone = ws.cached_clone(repo_cfg)
    assert clone == ws.root / "cache" / "calc.git"
    assert workspace.resolve(clone, "main") == history["third"]
    newer = commit(source, {"NEWS.md": "v2\n"}, "news")
    assert ws.cached_clone(repo_cfg) == clone
    assert workspace.resolve(clone, "main") == newer


def test_worktree_is_detached_at_the_ref_and_idempotent(
    ws: Workspaces, repo_cfg: RepoConfig, history: dict[str, str]
) -> None:
    path = ws.worktree(repo_cfg, "inc-42", history["second"], "diagnosis")
    assert path == ws.root / "worktrees" / "inc-42" / "diagnosis"
    assert workspace.resolve(path, "HEAD") == history["second"]
    assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=path).returncode != 0  # detached

    # A redelivered event asks again, after a crash left the worktree dirty: it is recreated, clean.
    (path / "app" / "calc.py").write_text("garbage\n")
    (path / "stray.txt").write_text("left over\n")
    again = ws.worktree(repo_cfg, "inc-42", history["third"], "diagnosis")
    assert again == path
    assert workspace.resolve(again, "HEAD") == history["third"]
    assert not (again / "stray.txt").exists()
    assert "def neg" in (again / "app" / "calc.py").read_text()

    # Someone deleted the folder by hand: the stale registration does not get in the way.
    shutil.rmtree(path)
    assert ws.worktree(repo_cfg, "inc-42", "main", "diagnosis") == path
    assert (path / "README.md").exists()


def test_worktree_fetches_a_ref_the_cache_does_not_have_yet(
    ws: Workspaces, repo_cfg: RepoConfig, source: Path, history: dict[str, str]
) -> None:
    ws.cached_clone(repo_cfg)
    newer = commit(source, {"app/extra.py": "X = 1\n"}, "extra")
    path = ws.worktree(repo_cfg, "inc-7", newer, "fix")
    assert workspace.resolve(path, "HEAD") == newer
    with pytest.raises(GitError):
        ws.worktree(repo_cfg, "inc-7", "0" * 40, "fix")


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".", "..", "-rf"])
def test_worktree_names_must_be_single_safe_components(ws: Workspaces, repo_cfg: RepoConfig, name: str) -> None:
    with pytest.raises(ValueError):
        ws.worktree(repo_cfg, name, "main", "fix")
    with pytest.raises(ValueError):
        ws.worktree(repo_cfg, "inc-1", "main", name)


def test_remove_worktree(ws: Workspaces, repo_cfg: RepoConfig, history: dict[str, str]) -> None:
    keep = ws.worktree(repo_cfg, "inc-9", "main", "diagnosis")
    gone = ws.worktree(repo_cfg, "inc-9", "main", "fix")
    ws.remove_worktree(gone)
    assert not gone.exists() and keep.exists()
    ws.remove_worktree(gone)  # already gone: fine
    ws.remove_worktree(keep)
    assert not (ws.root / "worktrees" / "inc-9").exists()
    listed = git(ws.clone_path(repo_cfg), "worktree", "list", "--porcelain")
    assert "inc-9" not in listed


def test_reading_commits_files_and_blame(ws: Workspaces, repo_cfg: RepoConfig, history: dict[str, str]) -> None:
    path = ws.worktree(repo_cfg, "inc-1", "main", "diagnosis")
    assert workspace.list_files(path) == {"app/calc.py", "README.md"}
    assert workspace.list_files(path, history["first"]) == {"app/calc.py", "README.md"}
    assert workspace.commit_exists(path, history["first"])
    assert not workspace.commit_exists(path, "1234567890abcdef1234567890abcdef12345678")
    assert workspace.commits_since(path, history["first"]) == 2

    info = workspace.commit_info(path, history["second"])
    assert (info.sha, info.subject, info.author, info.parents) == (
        history["second"],
        "calc: swap operands",
        "Eve",
        (history["first"],),
    )
    assert info.authored_at.utcoffset() == timedelta(hours=1)

    blame = workspace.blame_line(path, "app/calc.py", 2, "HEAD")
    assert (blame.sha, blame.author, blame.summary, blame.original_line) == (
        history["second"],
        "Eve",
        "calc: swap operands",
        2,
    )
    assert blame.authored_at == info.authored_at
    assert workspace.blame_line(path, "app/calc.py", 1, "HEAD").sha == history["first"]
    with pytest.raises(GitError, match="has only"):
        workspace.blame_line(path, "app/calc.py", 99, "HEAD")

    touched = workspace.log_line_history(path, "app/calc.py", 2, "HEAD", max_count=5)
    assert [c.sha for c in touched] == [history["second"], history["first"]]
    assert workspace.read_file(path, "app/calc.py", history["first"]).endswith("return a + b\n")


def test_blame_ignores_whitespace_and_follows_code_moved_to_another_file(source: Path) -> None:
    head = "def add_quantities(first_quantity_of_the_order, second_quantity_of_the_order):\n"
    first = commit(
        source,
        {"app/calc.py": f"{head}    return first_quantity_of_the_order + second_quantity_of_the_order\n"},
        "init",
    )
    swapped = f"{head}    return second_quantity_of_the_order + first_quantity_of_the_order\n"
    logic = commit(source, {"app/calc.py": swapped}, "calc: swap operands", "Eve")
    reindented = f"{head}        return second_quantity_of_the_order  +  first_quantity_of_the_order\n"
    commit(source, {"app/calc.py": reindented}, "style: reindent")
    commit(source, {"app/calc.py": "", "app/ops.py": reindented}, "move add to ops")
    # -w: the reindent is not a change; -M -C: the line is followed back into the file it was moved from
    blame = workspace.blame_line(source, "app/ops.py", 2)
    assert (blame.sha, blame.original_file) == (logic, "app/calc.py")

    assert workspace.blame_line(source, "app/ops.py", 1).sha == first


def test_blame_looks_through_the_commits_it_is_told_to_ignore(source: Path) -> None:
    head = "def add_quantities(first_quantity_of_the_order, second_quantity_of_the_order):\n"
    commit(
        source, {"app/ops.py": f"{head}    return first_quantity_of_the_order + second_quantity_of_the_order\n"}, "a"
    )
    swapped = f"{head}    return second_quantity_of_the_order + first_quantity_of_the_order\n"
    logic = commit(source, {"app/ops.py": swapped}, "calc: swap operands", "Eve")
    wrapped = f"{head}    return (\n        second_quantity_of_the_order + first_quantity_of_the_order\n    )\n"
    fmt = commit(source, {"app/ops.py": wrapped}, "style: wrap")
    assert workspace.blame_line(source, "app/ops.py", 3).sha == fmt
    assert workspace.blame_line(source, "app/ops.py", 3, ignore_revs=[fmt]).sha == logic
    # Only full shas reach git (it refuses an ignore file with anything else in it); unknown ones are skipped.
    assert workspace.blame_line(source, "app/ops.py", 3, ignore_revs=[fmt[:7], "f" * 40]).sha == fmt
    assert workspace.blame_line(source, "app/ops.py", 3, ignore_revs=[fmt.upper(), "f" * 40]).sha == logic


def test_changed_files_and_head_branch(source: Path) -> None:
    root = commit(source, {"a.py": "a\n", "tests/test_a.py": "t\n"}, "init")
    git(source, "checkout", "-q", "-b", "side")
    side = commit(source, {"b.py": "b\n"}, "side")
    git(source, "checkout", "-q", "main")
    main = commit(source, {"a.py": "a2\n"}, "main")
    git(source, "merge", "-q", "--no-edit", "side", date=_next_date())
    merge = git(source, "rev-parse", "HEAD").strip()
    assert workspace.changed_files(source, root) == {"a.py", "tests/test_a.py"}  # a root commit: everything
    assert workspace.changed_files(source, side) == {"b.py"}
    assert workspace.changed_files(source, main) == {"a.py"}
    assert workspace.changed_files(source, merge) == {"b.py"}  # against its first parent
    assert workspace.head_branch(source) == "main"
    git(source, "checkout", "-q", "--detach")
    assert workspace.head_branch(source) is None


def test_a_missing_ref_is_told_apart_from_a_lock_race(source: Path, history: dict[str, str]) -> None:
    for ref in ("master", "f" * 40, "abc1234"):
        with pytest.raises(GitError) as missing:
            workspace.resolve(source, ref)
        assert missing.value.missing_ref and not missing.value.contention
    locked = GitError(("worktree", "add"), 128, "fatal: Unable to create '/c/index.lock': File exists.")
    assert locked.contention and not locked.missing_ref
    assert not GitError(("fetch",), 128, "fatal: unable to access 'https://x/': Could not resolve host").missing_ref


def test_git_errors_carry_stderr(tmp_path: Path, source: Path, history: dict[str, str]) -> None:
    with pytest.raises(GitError) as excinfo:
        workspace.resolve(source, "no-such-branch")
    assert excinfo.value.returncode not in (0, None)
    assert "no-such-branch" in str(excinfo.value) or excinfo.value.stderr
    with pytest.raises(GitError, match="timed out"):
        workspace.git(source, "log", timeout=0.000001)
    with pytest.raises(GitError):
        workspace.list_files(tmp_path / "does not exist")


def test_read_file_returns_the_committed_text_and_fails_for_a_missing_file(source: Path) -> None:
    # Which functions a file defines is language knowledge (pagerpatch.traces.symbols, tests/unit/test_stacktrace.py);
    # git only supplies the text, and says so when the file is not there.
    files = {"py/app.py": "class Cart:\n    async def total(self):\n        return 1\n", "go/cart.go": "package main\n"}
    commit(source, files, "functions")
    for file, text in files.items():
        assert workspace.read_file(source, file, "HEAD") == text
    with pytest.raises(GitError):
        workspace.read_file(source, "no/such/file.py", "HEAD")


def test_revert_makes_a_commit_that_undoes_the_change(
    ws: Workspaces, repo_cfg: RepoConfig, history: dict[str, str]
) -> None:
    # Revert "neg" (the head): applies cleanly.
    path = ws.worktree(repo_cfg, "inc-3", "main", "fix")
    result = workspace.revert(path, history["third"])
    assert result.ok and result.commit and not result.error
    assert workspace.resolve(path, "HEAD") == result.commit
    assert workspace.commit_info(path, result.commit).parents == (history["third"],)
    assert workspace.commit_info(path, result.commit).author == "pagerpatch"
    assert "def neg" not in (path / "app" / "calc.py").read_text()

    stats = workspace.diff_stats(path, history["third"], result.commit)
    assert stats == workspace.DiffStats(files=("app/calc.py",), added=0, removed=4)
    patch = workspace.diff(path, history["third"], "HEAD")
    assert patch.startswith("diff --git a/app/calc.py b/app/calc.py")
    assert workspace.patch_stats(patch) == stats


def test_revert_conflict_is_a_clear_failure_and_leaves_the_worktree_clean(
    ws: Workspaces, repo_cfg: RepoConfig, source: Path, history: dict[str, str]
) -> None:
    # Line 2 was changed by "second" and then again here: reverting "second" cannot apply.
    later = commit(source, {"app/calc.py": "def add(a, b):\n    return int(b) + int(a)\n"}, "calc: coerce")
    path = ws.worktree(repo_cfg, "inc-4", later, "fix")
    result = workspace.revert(path, history["second"])
    assert not result.ok
    assert result.commit is None
    assert result.conflicted_files == ("app/calc.py",)
    assert history["second"][:7] in result.error and "app/calc.py" in result.error
    assert workspace.resolve(path, "HEAD") == later
    assert git(path, "status", "--porcelain") == ""
    assert not (path / ".git").is_dir()  # still a linked worktree


def test_revert_under_lock_contention_is_raised_for_a_retry_not_reported_as_a_failed_revert(
    ws: Workspaces, repo_cfg: RepoConfig, history: dict[str, str]
) -> None:
    path = ws.worktree(repo_cfg, "inc-5", "main", "fix")
    git_dir = Path(git(path, "rev-parse", "--absolute-git-dir").strip())
    (git_dir / "index.lock").write_text("")  # another git process is mid-write
    with pytest.raises(workspace.GitError) as caught:
        workspace.revert(path, history["third"])
    assert caught.value.contention
    (git_dir / "index.lock").unlink()
    assert workspace.revert(path, history["third"]).ok  # and the retry succeeds


def test_revert_in_a_vanished_worktree_is_raised_for_a_retry_not_reported_as_a_failed_revert(
    ws: Workspaces, repo_cfg: RepoConfig, history: dict[str, str]
) -> None:
    path = ws.worktree(repo_cfg, "inc-6", "main", "fix")
    shutil.rmtree(path)  # something removed the working tree under us: an environment fault, not the commit's
    with pytest.raises((workspace.GitError, FileNotFoundError)) as caught:
        workspace.revert(path, history["third"])
    assert not isinstance(caught.value, workspace.GitError) or caught.value.contention
    # The fault seen in CI, word for word, is classified the same way.
    seen = workspace.GitError(("revert",), 128, "fatal: cannot create directory at 'ledger': No such file or directory")
    assert seen.contention
    # A fresh worktree (what fixgen makes for its retry) reverts cleanly.
    fresh = ws.worktree(repo_cfg, "inc-6", "main", "fix")
    assert workspace.revert(fresh, history["third"]).ok


def test_concurrent_requests_share_one_clone(ws: Workspaces, repo_cfg: RepoConfig, history: dict[str, str]) -> None:
    # Replicas of diagnosis and fixgen ask at once, before any clone exists: one clone, every worktree made.
    jobs = [(f"inc-{i}", purpose) for i in range(3) for purpose in ("diagnosis", "fix")]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        paths = list(pool.map(lambda job: ws.worktree(repo_cfg, job[0], history["second"], job[1]), jobs))
    assert len(set(paths)) == len(jobs)
    assert all(workspace.resolve(p, "HEAD") == history["second"] for p in paths)
    assert [p.name for p in (ws.root / "cache").iterdir() if p.is_dir()] == ["calc.git"]

"""Read-only repository tools shipped with the runtime (declared in config/tools.yaml with `callable:`).

They work on the checked-out workspace the caller passes as `tool_context={"workspace": path, "rev": sha}`;
git output is returned as text, and the runtime truncates, redacts and audits it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pagerpatch.git import workspace
from pagerpatch.llm.registry import ToolContext, ToolOutput


def _repo(ctx: ToolContext) -> tuple[Path, str]:
    path = ctx.extra.get("workspace")
    if path is None:
        raise ValueError("no workspace in the tool context (pass tool_context={'workspace': path})")
    return Path(path), str(ctx.extra.get("rev", "HEAD"))


def read_file(path: str, ctx: ToolContext, start_line: int = 1, max_lines: int = 400) -> ToolOutput:
    """Lines of a file as committed at the workspace's revision, numbered."""
    repo, rev = _repo(ctx)
    lines = workspace.read_file(repo, path, rev).splitlines()
    first = max(1, start_line)
    chosen = lines[first - 1 : first - 1 + max_lines]
    text = "\n".join(f"{n:>5}  {line}" for n, line in enumerate(chosen, start=first))
    facts = [f"{path} has {len(lines)} lines; read {first}-{first + len(chosen) - 1}"]
    return ToolOutput(text=text or "(no lines in that range)", facts=facts)


def search_code(pattern: str, ctx: ToolContext, glob: str | None = None, max_results: int = 50) -> ToolOutput:
    """`git grep -n` for an extended regular expression at the workspace's revision."""
    repo, rev = _repo(ctx)
    args = ["grep", "-n", "-E", "-I", "-e", pattern, rev]
    if glob:
        args += ["--", glob]
    try:
        out = workspace.git(repo, *args)
    except workspace.GitError as exc:
        if exc.returncode == 1:  # no match
            return ToolOutput(text="no matches", facts=[f"no match for {pattern!r}"])
        raise
    hits = [h.removeprefix(f"{rev}:") for h in out.splitlines()]
    shown = hits[:max_results]
    more = f"\n[{len(hits) - len(shown)} more matches not shown]" if len(hits) > len(shown) else ""
    files = sorted({h.split(":", 1)[0] for h in hits})
    return ToolOutput(text="\n".join(shown) + more, facts=[f"{len(hits)} match(es) for {pattern!r} in {files[:10]}"])


def git_log(ctx: ToolContext, path: str | None = None, max_count: int = 20) -> str:
    """Recent commits (sha, date, author, subject), optionally only those touching `path`."""
    repo, rev = _repo(ctx)
    args = ["log", f"--max-count={max(1, min(max_count, 200))}", "--format=%h %ad %an: %s", "--date=short", rev]
    if path:
        args += ["--", path]
    return workspace.git(repo, *args) or "(no commits)"


def git_blame(path: str, line: int, ctx: ToolContext) -> str:
    """The commit that last changed one line."""
    repo, rev = _repo(ctx)
    b = workspace.blame_line(repo, path, line, rev)
    return f"{path}:{line} last changed by {b.short_sha} ({b.author}, {b.authored_at:%Y-%m-%d}): {b.summary}"


_REV = re.compile(r"^(?:[0-9a-fA-F]{4,64}|HEAD(?:[~^]\d{0,3})*)$")
_SHOW_LIMIT = 400  # patch lines shown by git_show (the runtime also cuts by characters)


def git_show(commit: str, ctx: ToolContext, path: str | None = None) -> ToolOutput:
    """One commit: sha, author, date, subject, the files it changed and its patch (only `path`'s when given)."""
    repo, _ = _repo(ctx)
    if not _REV.match(commit):
        return ToolOutput(
            text=f"not a commit sha: {commit!r}", facts=[f"{commit!r} is not a commit sha"], is_error=True
        )
    args = ["show", "--stat", "--patch", "--format=commit %H%nauthor %an <%ae>%ndate %ad%n%n    %s%n", "--date=iso"]
    args += ["--end-of-options", commit]
    if path:
        args += ["--", path]
    try:
        out = workspace.git(repo, *args)
    except workspace.GitError:
        return ToolOutput(text=f"no commit {commit} in this repository", facts=[f"no commit {commit}"], is_error=True)
    lines = out.splitlines()
    shown = lines[:_SHOW_LIMIT]
    more = (
        f"\n[{len(lines) - len(shown)} more patch lines not shown; pass `path` to narrow]"
        if len(lines) > len(shown)
        else ""
    )
    head = {k: v for k, _, v in (ln.partition(" ") for ln in lines[:3])}
    subject = next((ln.strip() for ln in lines[3:6] if ln.strip()), "")
    end = next((i for i, ln in enumerate(lines) if re.match(r"^ \d+ files? changed", ln)), 0)
    changed = [ln.split("|", 1)[0].strip() for ln in lines[:end] if "|" in ln]
    fact = (
        f"commit {head.get('commit', commit)[:12]} {subject!r} by {head.get('author', '?')} on {head.get('date', '?')}"
    )
    return ToolOutput(text="\n".join(shown) + more, facts=[fact, f"changed: {', '.join(changed[:20]) or '-'}"])


def recent_commits(ctx: ToolContext, paths: list[str] | None = None, max_count: int = 20) -> ToolOutput:
    """The newest commits up to the workspace's revision (optionally only those touching `paths`), each with the
    files it changed."""
    repo, rev = _repo(ctx)
    sep = "\x1e"
    args = ["log", f"--max-count={max(1, min(max_count, 100))}", f"--format={sep}%h %ad %an: %s", "--date=short"]
    args += ["--name-only", "--end-of-options", rev]
    if paths:
        args += ["--", *paths]
    out = workspace.git(repo, *args)
    entries = []
    for record in out.split(sep)[1:]:
        head, *files = [ln for ln in record.splitlines() if ln.strip()]
        entries.append((head, files))
    if not entries:
        return ToolOutput(text="(no commits)", facts=["no commits match"])
    text = "\n".join(f"{head}\n    " + "\n    ".join(files[:30]) for head, files in entries)
    return ToolOutput(text=text, facts=[f"{head} [{', '.join(files[:5])}]" for head, files in entries[:10]])

"""Read-only repository tools shipped with the runtime (declared in config/tools.yaml with `callable:`).

They work on the checked-out workspace the caller passes as `tool_context={"workspace": path, "rev": sha}`;
git output is returned as text, and the runtime truncates, redacts and audits it.
"""

from __future__ import annotations

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

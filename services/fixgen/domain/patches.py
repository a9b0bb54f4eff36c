"""The fix agent's answer and how it becomes a patch git can check: exact edits or a unified diff, plus the
regression test that reproduces the failure (pure; docs/fixgen.md).

An edit replaces text that occurs exactly once in the file at the base commit (an empty `old` creates a new file);
a unified diff is parsed with `unidiff` and its headers normalised to git's `a/`/`b/` form. The regression test is
a whole file, kept apart from the fix so it can be run at the base commit first (reproduce first).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from pydantic import BaseModel, Field
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

__all__ = [
    "BuiltPatch",
    "FileEdit",
    "FixProposal",
    "PatchProblem",
    "RegressionTest",
    "apply_edits",
    "build_patch",
    "changed_paths",
    "file_diff",
    "normalise_diff",
    "proposal_paths",
    "unsafe_path",
]

_NO_NEWLINE = "\\ No newline at end of file\n"
_UNSAFE = "the diff writes an unsafe path: "


class FileEdit(BaseModel):
    """One exact replacement in one file: `old` must occur exactly once in the file at the base commit (copy it
    from read_file without the line numbers); an empty `old` creates a new file whose text is `new`."""

    path: str = Field(min_length=1, max_length=500, description="Repository-relative path")
    old: str = Field(default="", max_length=50_000)
    new: str = Field(max_length=50_000)


class RegressionTest(BaseModel):
    """A whole test file that fails at the base commit the way the alert did and passes with the fix."""

    path: str = Field(min_length=1, max_length=500, description="Repository-relative path of the test file")
    content: str = Field(min_length=1, max_length=50_000)


class FixProposal(BaseModel):
    """The smallest fix of the root cause: exact edits (or a unified diff) and a regression test reproducing the
    alert's failure. The repository's tests in a sandbox decide whether it stands."""

    summary: str = Field(min_length=1, max_length=500, description="One line: what the fix changes and why")
    edits: list[FileEdit] = Field(default_factory=list, max_length=20)
    diff: str | None = Field(
        default=None, max_length=200_000, description="A unified diff, instead of or besides `edits`"
    )
    regression_test: RegressionTest | None = None
    no_reproduction_reason: str | None = Field(
        default=None, max_length=1000, description="Only when no regression test can be written: why not"
    )


@dataclass(frozen=True)
class BuiltPatch:
    """The fix as a git diff (without the regression test), and the whole change's size and files."""

    fix_diff: str
    test_diff: str
    files: tuple[str, ...]
    added: int
    removed: int


@dataclass(frozen=True)
class PatchProblem:
    """Why a proposal is not a patch: `refused` for a path it may never write, else a mistake to correct."""

    reason: str
    refused: bool = False


def unsafe_path(path: str) -> str | None:
    """Why a path may not be written by a patch (outside the repository, inside .git), or None."""
    pure = PurePosixPath(path)
    if not path or "\0" in path or "\\" in path:
        return f"{path!r} is not a plain repository path"
    if pure.is_absolute() or ".." in pure.parts:
        return f"{path!r} points outside the repository"
    if pure.parts and pure.parts[0] == ".git":
        return f"{path!r} is inside .git"
    return None


def proposal_paths(proposal: FixProposal) -> list[str]:
    """Files whose text at the base commit the proposal's edits and regression test need, each once."""
    paths = [edit.path for edit in proposal.edits]
    if proposal.regression_test is not None:
        paths.append(proposal.regression_test.path)
    return list(dict.fromkeys(paths))


def apply_edits(edits: Sequence[FileEdit], originals: Mapping[str, str | None]) -> dict[str, str] | str:
    """Each edited file's new text, or why the edits cannot be made (text not found, or found more than once)."""
    texts: dict[str, str | None] = {}
    for n, edit in enumerate(edits, start=1):
        current = texts[edit.path] if edit.path in texts else originals.get(edit.path)
        if not edit.old:
            if current is not None:
                return f"edit {n}: {edit.path} exists, so `old` must quote the text to replace"
            texts[edit.path] = edit.new
            continue
        if current is None:
            return f"edit {n}: {edit.path} does not exist at the base commit"
        found = current.count(edit.old)
        if found != 1:
            how = "is not in" if found == 0 else f"occurs {found} times in"
            return f"edit {n}: the `old` text {how} {edit.path} (it must occur exactly once, quoted exactly)"
        texts[edit.path] = current.replace(edit.old, edit.new, 1)
    return {path: text for path, text in texts.items() if text is not None and text != originals.get(path)}


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n" + _NO_NEWLINE
    return lines


def file_diff(path: str, before: str | None, after: str) -> str:
    """A git-style unified diff of one file (a new file when `before` is None)."""
    header = f"diff --git a/{path} b/{path}\n"
    if before is None:
        header += "new file mode 100644\n"
    source = "/dev/null" if before is None else f"a/{path}"
    body = difflib.unified_diff(_lines(before or ""), _lines(after), fromfile=source, tofile=f"b/{path}", n=3)
    text = "".join(body)
    return header + text if text else ""


def _strip(name: str) -> str:
    return name[2:] if name.startswith(("a/", "b/")) else name


def normalise_diff(text: str) -> tuple[PatchSet, str] | str:
    """A model's unified diff parsed by unidiff, with git's `a/` `b/` headers; or why it is not a diff."""
    try:
        patch = PatchSet(text if text.endswith("\n") else text + "\n")
    except UnidiffParseError as exc:
        return f"the diff does not parse: {exc}"
    if not len(patch):
        return "the diff changes no file"
    out: list[str] = []
    for patched in patch:
        if patched.is_binary_file:
            return f"the diff changes a binary file ({patched.path})"
        source, target = _strip(patched.source_file), _strip(patched.target_file)
        path = target if target != "/dev/null" else source
        if "/dev/null" not in (source, target) and source != target:  # a rename (git needs to be told)
            out.append(f"diff --git a/{source} b/{target}\nrename from {source}\nrename to {target}\n")
        else:
            out.append(f"diff --git a/{path} b/{path}\n")
        if patched.is_added_file:
            out.append("new file mode 100644\n")
        elif patched.is_removed_file:
            out.append("deleted file mode 100644\n")
        out.append(f"--- {'/dev/null' if source == '/dev/null' else 'a/' + source}\n")
        out.append(f"+++ {'/dev/null' if target == '/dev/null' else 'b/' + target}\n")
        out.extend(str(hunk) for hunk in patched)
    normalised = "".join(out)
    return PatchSet(normalised), normalised


def _stats(diff: str) -> tuple[list[str], int, int]:
    patch = PatchSet(diff) if diff else PatchSet("")
    return [_strip(f.path) for f in patch], int(patch.added), int(patch.removed)


def changed_paths(built: BuiltPatch) -> list[str]:
    """Every path the fix and its regression test change, each once: both sides of a rename, a deleted file too
    (what is committed; nothing else the worktree holds)."""
    paths: list[str] = []
    for diff in (built.fix_diff, built.test_diff):
        for patched in PatchSet(diff) if diff else ():
            paths += [_strip(name) for name in (patched.source_file, patched.target_file) if name != "/dev/null"]
    return list(dict.fromkeys(paths))


def build_patch(proposal: FixProposal, originals: Mapping[str, str | None]) -> BuiltPatch | PatchProblem:
    """The proposal as diffs git can check, or why it cannot be one (a reason the next attempt is told)."""
    for path in proposal_paths(proposal):
        if (why := unsafe_path(path)) is not None:
            return PatchProblem(why, refused=True)
    built = _build(proposal, originals)
    return PatchProblem(built, refused=built.startswith(_UNSAFE)) if isinstance(built, str) else built


def _build(proposal: FixProposal, originals: Mapping[str, str | None]) -> BuiltPatch | str:
    test = proposal.regression_test
    parts: list[str] = []
    if proposal.edits:
        edited = apply_edits(proposal.edits, originals)
        if isinstance(edited, str):
            return edited
        parts += [file_diff(path, originals.get(path), text) for path, text in edited.items()]
    if proposal.diff and proposal.diff.strip():
        parsed = normalise_diff(proposal.diff)
        if isinstance(parsed, str):
            return parsed
        patch, normalised = parsed
        for patched in patch:
            for name in {patched.source_file, patched.target_file} - {"/dev/null"}:  # a rename's both sides
                if (why := unsafe_path(_strip(name))) is not None:
                    return _UNSAFE + why
        parts.append(normalised)
    fix_diff = "".join(parts)
    files, added, removed = _stats(fix_diff)
    if not files:
        return "the proposal changes nothing: give `edits` (or a `diff`) that change the code"
    if len(set(files)) != len(files):
        return "the edits and the diff change the same file: give each file's change once"
    if test is not None and test.path in files:
        return f"the fix changes the regression test's file {test.path}: give the test only in `regression_test`"
    test_diff = file_diff(test.path, originals.get(test.path), test.content) if test is not None else ""
    test_files, test_added, test_removed = _stats(test_diff)
    return BuiltPatch(
        fix_diff=fix_diff,
        test_diff=test_diff,
        files=tuple(dict.fromkeys([*files, *test_files])),
        added=added + test_added,
        removed=removed + test_removed,
    )

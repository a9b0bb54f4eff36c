"""Reading the knowledge folder: Markdown files with YAML frontmatter, validated one file at a time.

A malformed file is reported as `file:line: field: message` and skipped; every other file still loads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pagerpatch.knowledge.match import parse_pattern
from pagerpatch.knowledge.model import FOLDER_KINDS, Kind, KnowledgeEntry
from pagerpatch.settings.files import line_in_text

FENCE = "---"
KEYWORD = r"^[a-z0-9][a-z0-9._-]{0,99}$"
SKIPPED_NAMES = frozenset({"readme.md"})  # a folder's README is for people, not an entry


class Frontmatter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keyword: str = Field(pattern=KEYWORD)
    description: str = Field(min_length=1, max_length=500)
    tags: list[str] = Field(default_factory=list)
    kind: Literal["guideline", "knowledge", "runbook"] | None = None
    alerts: list[str] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for t in v:
            if not t.strip():
                raise ValueError("a tag must not be empty")
        return [t.strip() for t in v]

    @field_validator("alerts")
    @classmethod
    def _alerts(cls, v: list[str]) -> list[str]:
        for i, p in enumerate(v):
            try:
                parse_pattern(p)
            except ValueError as exc:
                raise ValueError(f"alerts[{i}]: {exc}") from None
        return v


@dataclass(frozen=True)
class LoadedFile:
    entry: KnowledgeEntry
    content_hash: str


@dataclass
class Loaded:
    """What a folder held: the valid entries, the errors of the others, and every Markdown file's relative path."""

    folder: Path
    files: list[LoadedFile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # all candidate files, valid or not
    missing: bool = False

    @property
    def entries(self) -> list[KnowledgeEntry]:
        return [f.entry for f in self.files]


class FileError(Exception):
    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(f"{line}: {field}: {message}")
        self.line, self.field, self.message = line, field, message


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split_frontmatter(text: str) -> tuple[str, str, int]:
    """(frontmatter YAML, body, line of the body's first line); FileError when there is no frontmatter."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").rstrip() != FENCE:
        raise FileError(1, "frontmatter", "missing: the file must start with a '---' line")
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n").rstrip() in (FENCE, "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :]), i + 2
    raise FileError(1, "frontmatter", "no closing '---' line")


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_text(text: str, rel: str) -> KnowledgeEntry:
    """One file's entry; FileError (line within the file) when it is malformed."""
    front, body, _ = split_frontmatter(text)
    try:
        data = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise FileError(line, "frontmatter", f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise FileError(2, "frontmatter", "must be a mapping of fields (keyword, description, tags...)")
    try:
        fm = Frontmatter.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            raise FileError(1, _field(loc), "required field missing") from None
        if loc == ("alerts",) and msg.startswith("alerts["):  # the validator names the item
            index = int(msg[len("alerts[") : msg.index("]")])
            loc, msg = ("alerts", index), msg.split(": ", 1)[1]
        line = line_in_text(front, loc)
        raise FileError(line + 1 if line else 1, _field(loc), msg) from None
    folder = PurePosixPath(rel).parts[0] if len(PurePosixPath(rel).parts) > 1 else None
    by_folder = FOLDER_KINDS.get(folder) if folder else None
    kind: Kind | None = fm.kind or by_folder
    kind_line = (line_in_text(front, ("kind",)) or 0) + 1
    if kind is None:
        why = (
            "missing: set `kind:` (guideline, knowledge, runbook) or put the file in guidelines/, knowledge/, runbooks/"
        )
        raise FileError(1, "kind", why)
    if fm.kind and by_folder and fm.kind != by_folder:
        raise FileError(kind_line, "kind", f"{fm.kind!r} but the file is in {folder}/ (kind {by_folder!r})")
    if fm.alerts and kind != "runbook":
        raise FileError((line_in_text(front, ("alerts",)) or 0) + 1, "alerts", "only runbooks match alerts")
    if not body.strip():
        raise FileError(1, "body", "empty: the Markdown after the frontmatter is the content")
    return KnowledgeEntry(kind, fm.keyword, fm.description.strip(), fm.tags, fm.alerts, rel, body.strip() + "\n")


def candidates(folder: Path) -> list[str]:
    """The Markdown files of the folder, relative, sorted (README.md files and hidden folders left out)."""
    out = []
    for p in folder.rglob("*.md"):
        rel = p.relative_to(folder)
        if p.is_file() and p.name.lower() not in SKIPPED_NAMES and not any(x.startswith(".") for x in rel.parts):
            out.append(rel.as_posix())
    return sorted(out)


def load_folder(folder: Path) -> Loaded:
    """Every valid entry of `folder`; each malformed file is one error and is skipped. Keywords are unique."""
    result = Loaded(folder)
    if not folder.is_dir():
        result.missing = True
        return result
    seen: dict[str, str] = {}
    for rel in candidates(folder):
        result.paths.append(rel)
        where = folder / rel
        try:
            text = where.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.errors.append(f"{where}:1: file: cannot read: {exc}")
            continue
        try:
            entry = parse_text(text, rel)
        except FileError as exc:
            result.errors.append(f"{where}:{exc.line}: {exc.field}: {exc.message}")
            continue
        if entry.keyword in seen:
            front = split_frontmatter(text)[0]
            line = (line_in_text(front, ("keyword",)) or 0) + 1
            first = seen[entry.keyword]
            result.errors.append(f"{where}:{line}: keyword: {entry.keyword!r} is already defined in {first}")
            continue
        seen[entry.keyword] = rel
        result.files.append(LoadedFile(entry, content_hash(text)))
    return result

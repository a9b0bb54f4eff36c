"""Context discipline: a conversation whose messages carry tags, can be dropped, and whose raw tool outputs can
be replaced by the facts drawn from them; a phase starts from a prompt rebuilt from the previous phase's result.

Prompt caching: `messages(breakpoints=n)` puts `cache_control` markers on the conversation's stable prefix, the
messages before the first one whose raw tool output is still to be replaced by facts. That prefix only grows (the
replacement happens after it), so each request reads the prefix the previous one wrote and writes the new part.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

FACTS_MARKER = "[raw tool output replaced by the facts extracted from it]"
CACHE_CONTROL = {"type": "ephemeral"}
MAX_BREAKPOINTS = 4  # cache markers per request (the API refuses more)
UNMARKABLE = frozenset({"thinking", "redacted_thinking"})  # the API refuses cache_control on these


@dataclass
class Entry:
    role: str  # "user" or "assistant"
    content: list[dict[str, Any]]
    tags: set[str] = field(default_factory=set)
    # tool_use_id -> compact replacement for that tool_result's raw content (set by the tool loop)
    facts: dict[str, str] = field(default_factory=dict)


def _blocks(content: str | list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, dict):
        return [content]
    return [dict(b) for b in content]


class Conversation:
    """The messages of one agent step, with tags for later surgery."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self.entries: list[Entry] = list(entries)
        self._breakpoint: Entry | None = None  # where the last `messages(breakpoints=...)` put its newest marker

    @classmethod
    def of(cls, messages: Iterable[dict[str, Any]]) -> Conversation:
        return cls(Entry(m["role"], _blocks(m["content"])) for m in messages)

    def add(self, role: str, content: str | list[dict[str, Any]] | dict[str, Any], *tags: str) -> Entry:
        entry = Entry(role, _blocks(content), set(tags))
        self.entries.append(entry)
        return entry

    def user(self, content: str | list[dict[str, Any]], *tags: str) -> Entry:
        return self.add("user", content, *tags)

    def assistant(self, content: str | list[dict[str, Any]], *tags: str) -> Entry:
        return self.add("assistant", content, *tags)

    def tagged(self, tag: str) -> list[Entry]:
        return [e for e in self.entries if tag in e.tags]

    def drop(self, tag: str) -> int:
        """Remove every message carrying `tag` (tag a tool_use and its tool_result alike so pairs go together)."""
        before = len(self.entries)
        self.entries = [e for e in self.entries if tag not in e.tags]
        return before - len(self.entries)

    def compress_tool_results(self, *, tag: str | None = None) -> int:
        """Replace raw tool_result contents by their recorded facts (in entries with `tag`, or all). Returns count."""
        replaced = 0
        for entry in self.entries:
            if not entry.facts or (tag is not None and tag not in entry.tags):
                continue
            for block in entry.content:
                facts = entry.facts.get(block.get("tool_use_id", "")) if block.get("type") == "tool_result" else None
                if facts is None:
                    continue
                block["content"] = [{"type": "text", "text": f"{FACTS_MARKER}\n{facts}"}]
                replaced += 1
            entry.facts = {}
        return replaced

    def replace_tool_result(self, tool_use_id: str, facts: str) -> bool:
        """Replace one tool_result's content with `facts` right away."""
        for entry in self.entries:
            for block in entry.content:
                if block.get("type") == "tool_result" and block.get("tool_use_id") == tool_use_id:
                    block["content"] = [{"type": "text", "text": f"{FACTS_MARKER}\n{facts}"}]
                    entry.facts.pop(tool_use_id, None)
                    return True
        return False

    def stable(self, *, compressing: bool = True) -> list[Entry]:
        """The entries before the first one still holding raw tool output that will be replaced by facts (all of
        them when nothing will be compressed)."""
        pending = next((i for i, e in enumerate(self.entries) if e.facts and compressing), len(self.entries))
        return self.entries[:pending]

    def breakpoints(self, limit: int, *, compressing: bool = True) -> list[Entry]:
        """Up to `limit` entries whose last block gets a cache marker: the end of the stable prefix and, before it,
        the previous request's marker (an exact hit for the prefix it wrote, however many blocks came since)."""
        stable = [e for e in self.stable(compressing=compressing) if _markable(e) is not None]
        if limit <= 0 or not stable:
            return []
        marks = [stable[-1]]
        previous = self._breakpoint
        if limit > 1 and previous is not None and previous is not marks[0] and any(e is previous for e in stable):
            marks.insert(0, previous)
        self._breakpoint = marks[-1]
        return marks

    def messages(self, *, breakpoints: int = 0, compressing: bool = True) -> list[dict[str, Any]]:
        """The Messages API payload; consecutive messages of one role are merged (drops can make them adjacent).
        With `breakpoints`, up to that many cache markers on the stable prefix (the history itself is unchanged);
        `compressing=False` when no raw tool output will be replaced (then the whole conversation is stable)."""
        marked = self.breakpoints(breakpoints, compressing=compressing)
        out: list[dict[str, Any]] = []
        for e in self.entries:
            blocks = copy.deepcopy(e.content)
            if any(e is m for m in marked):
                index = _markable(e)
                assert index is not None
                blocks[index]["cache_control"] = dict(CACHE_CONTROL)
            if out and out[-1]["role"] == e.role:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": e.role, "content": blocks})
        return out

    def __len__(self) -> int:
        return len(self.entries)


def cap_breakpoints(request: dict[str, Any]) -> None:
    """At most MAX_BREAKPOINTS cache markers in `request`: the message-level ones beyond what its tools and system
    leave are dropped, the earliest first (the latest cover the longest prefix)."""
    system = request.get("system")
    fixed = [*(request.get("tools") or []), *(system if isinstance(system, list) else [])]
    free = max(0, MAX_BREAKPOINTS - sum(1 for b in fixed if "cache_control" in b))
    marked = [
        b
        for m in request.get("messages") or []
        if isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict) and "cache_control" in b
    ]
    for block in marked[: max(0, len(marked) - free)]:
        del block["cache_control"]


def _markable(entry: Entry) -> int | None:
    """The index of the entry's last block that may carry a cache marker, if any."""
    for i in range(len(entry.content) - 1, -1, -1):
        block = entry.content[i]
        if block.get("type") not in UNMARKABLE and not (block.get("type") == "text" and not block.get("text")):
            return i
    return None


def phase_prompt(previous: BaseModel, *, phase: str, task: str, previous_phase: str | None = None) -> Conversation:
    """A fresh conversation for `phase` holding only the previous phase's structured result and the task."""
    name = previous_phase or type(previous).__name__
    result = json.dumps(previous.model_dump(mode="json"), ensure_ascii=False, indent=1)
    conv = Conversation()
    conv.user(
        f'<previous_phase name="{name}">\n{result}\n</previous_phase>\n\n<task phase="{phase}">\n{task}\n</task>',
        f"phase:{phase}",
    )
    return conv

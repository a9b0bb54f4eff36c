"""The pure half of the sandbox: keeping the head and tail of a command's output, and summarising it."""

from __future__ import annotations

import re

_MARKER_RESERVE = 64  # bytes kept free for the truncation marker
_SUMMARY_MAX_CHARS = 200


def truncation_marker(dropped: int) -> str:
    """The visible marker that replaces the middle of over-long output."""
    return f"\n…[truncated {dropped} bytes]…\n"


def _cut_head(data: bytes) -> bytes:
    """Drop an incomplete UTF-8 sequence at the end of `data`."""
    for i in range(len(data) - 1, max(len(data) - 4, -1), -1):
        byte = data[i]
        if byte & 0xC0 == 0x80:  # continuation byte: keep looking for its lead
            continue
        need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
        return data[:i] if len(data) - i < need else data
    return data


def _cut_tail(data: bytes) -> bytes:
    """Drop continuation bytes at the start of `data` (the rest of a character cut in half)."""
    start = 0
    while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:
        start += 1
    return data[start:]


class OutputBuffer:
    """Bounded capture of a byte stream: the first and last bytes are kept, the middle is counted."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self.total = 0
        room = max(self.limit - _MARKER_RESERVE, 0)
        self._head_budget = room // 2
        self._tail_budget = room - self._head_budget
        self._head = bytearray()
        self._tail = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Account for `chunk`; memory stays below about limit + 2 * tail budget."""
        self.total += len(chunk)
        room = self.limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > 2 * self._tail_budget:
                del self._tail[: len(self._tail) - self._tail_budget]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def render(self) -> str:
        """The captured text; over the limit, head + marker + tail, at most `limit` bytes for UTF-8 input."""
        if not self.truncated:
            return self._head.decode("utf-8", errors="replace")
        head = _cut_head(bytes(self._head[: self._head_budget]))
        rest = bytes(self._head[self._head_budget :] + self._tail)
        tail = _cut_tail(rest[len(rest) - self._tail_budget :]) if self._tail_budget else b""
        dropped = self.total - len(head) - len(tail)
        return (
            head.decode("utf-8", errors="replace") + truncation_marker(dropped) + tail.decode("utf-8", errors="replace")
        )


def truncate_output(data: bytes, limit: int) -> str:
    """`data` as text, shortened to head + marker + tail when longer than `limit` bytes."""
    buffer = OutputBuffer(limit)
    buffer.feed(data)
    return buffer.render()


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PYTEST_WORDS = r"(?:passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected|rerun)"
_PYTEST = re.compile(
    rf"^(?:\d+ {_PYTEST_WORDS}(?:, \d+ {_PYTEST_WORDS})*|no tests ran) in \d+(?:\.\d+)?s(?: \([\d:.]+\))?$"
)
_UNITTEST_RAN = re.compile(r"^Ran \d+ tests? in \d+(?:\.\d+)?s$")
_CARGO = re.compile(r"^test result: \w+\. \d+ passed; \d+ failed")
_JEST = re.compile(r"^Tests:\s+\d+ \w+")
# node --test's closing counts, TAP ("# pass 2") or the spec reporter ("ℹ pass 2").
_NODE_COUNT = re.compile(r"^(?:#|ℹ) (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) (\d+(?:\.\d+)?)$")
_OOM = re.compile(r"\bMemoryError\b|Cannot allocate memory|std::bad_alloc|\bout of memory\b", re.IGNORECASE)


def extract_summary(output: str) -> str:
    """One line summing up a test run: pytest's final counts, unittest's verdict, else the last line."""
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        bare = line.strip("= ")
        if _PYTEST.match(bare):
            return bare
        if _UNITTEST_RAN.match(line):
            verdict = next((later for later in lines[i + 1 :] if later), "")
            return f"{line}: {verdict}" if verdict else line
        if _CARGO.match(line):
            return line
        if _JEST.match(line):
            return " ".join(line.split())
        if (node := _node_summary(lines[: i + 1])) is not None:
            return node
    last = next((line for line in reversed(lines) if line), "")
    if not last:
        return "(no output)"
    return last if len(last) <= _SUMMARY_MAX_CHARS else last[: _SUMMARY_MAX_CHARS - 1] + "…"


def _node_summary(lines: list[str]) -> str | None:
    """`node --test`'s counts ending at the last of `lines`: "3 tests: 2 passed, 1 failed in 52ms"; else None."""
    counts: dict[str, str] = {}
    for line in reversed(lines):
        match = _NODE_COUNT.match(line)
        if match is None:
            break
        counts.setdefault(match.group(1), match.group(2))
    if "tests" not in counts or "pass" not in counts:
        return None
    parts = [f"{counts['pass']} passed", f"{counts.get('fail', '0')} failed"]
    parts += [f"{counts[k]} {k}" for k in ("skipped", "cancelled", "todo") if counts.get(k, "0") != "0"]
    took = f" in {float(counts['duration_ms']):.0f}ms" if "duration_ms" in counts else ""
    return f"{counts['tests']} tests: {', '.join(parts)}{took}"


def looks_out_of_memory(output: str) -> bool:
    """Best effort: the last few lines report a failed allocation."""
    tail = [line for line in output.splitlines() if line.strip()][-3:]
    return any(_OOM.search(line) for line in tail)

"""Prompt caching: the fake Messages API's cache simulation (the API's rules) and where the conversation puts its
cache markers (the stable prefix, at most 4 markers in all)."""

from __future__ import annotations

import copy
import time
from typing import Any

from pagerpatch.llm.context import FACTS_MARKER, Conversation, cap_breakpoints
from tests.support.fake_anthropic import FakeAnthropic

CC = {"type": "ephemeral"}
TOOLS = [{"name": "echo", "description": "Echo. " * 50, "input_schema": {"type": "object"}, "cache_control": CC}]
SYSTEM = [{"type": "text", "text": "You investigate incidents. " * 40, "cache_control": CC}]


def body(messages: list[dict[str, Any]], *, model: str = "claude-sonnet-4-6", **over: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "tools": TOOLS, "system": SYSTEM, "messages": messages, **over}


def text(t: str, *, mark: bool = False) -> dict[str, Any]:
    return {"type": "text", "text": t, **({"cache_control": CC} if mark else {})}


def turn(n: int, *, mark_assistant: bool = False, mark_result: bool = False) -> list[dict[str, Any]]:
    use = {"type": "tool_use", "id": f"t{n}", "name": "echo", "input": {"value": str(n)}}
    result = {"type": "tool_result", "tool_use_id": f"t{n}", "content": f"output {n} " * 100}
    return [
        {"role": "assistant", "content": [use | ({"cache_control": CC} if mark_assistant else {})]},
        {"role": "user", "content": [result | ({"cache_control": CC} if mark_result else {})]},
    ]


def total(b: dict[str, Any]) -> int:
    u = FakeAnthropic(min_cacheable_tokens=10**9).usage(b)  # a fresh cache that caches nothing: all input
    return u["input_tokens"]


# ---------------------------------------------------------------- the fake's simulation
def test_without_markers_nothing_is_cached() -> None:
    fake = FakeAnthropic()
    plain = {"model": "m", "messages": [{"role": "user", "content": "hello " * 100}]}
    for _ in range(2):
        assert fake.usage(plain) == {
            "input_tokens": total(plain),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }


def test_tools_and_system_prefix_is_written_once_then_read_and_other_models_have_their_own() -> None:
    fake = FakeAnthropic()
    b = body([{"role": "user", "content": "first question"}])
    first, second = fake.usage(b), fake.usage(body([{"role": "user", "content": "another question"}]))
    assert first["cache_creation_input_tokens"] > 0 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert sum(first.values()) == total(b)  # input + write + read is the whole prompt
    other = fake.usage(body([{"role": "user", "content": "first question"}], model="claude-haiku-4-5"))
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] > 0


def test_a_message_breakpoint_reads_the_longest_written_prefix_and_writes_the_rest_up_to_it() -> None:
    fake = FakeAnthropic()
    prompt = {"role": "user", "content": [text("why does checkout fail? " * 20, mark=True)]}
    one = fake.usage(body([prompt]))
    # the next step: the marker moves to the assistant turn; the fresh tool output after it is plain input
    unmarked = {"role": "user", "content": [text("why does checkout fail? " * 20)]}
    step2 = body([unmarked, *turn(1, mark_assistant=True)])
    two = fake.usage(step2)
    assert one["cache_read_input_tokens"] == 0 and one["cache_creation_input_tokens"] > 0
    assert two["cache_read_input_tokens"] == one["cache_creation_input_tokens"]  # markers are not content
    assert 0 < two["cache_creation_input_tokens"] < 100  # only the assistant's tool_use block
    assert two["input_tokens"] > 200  # the tool output after the last marker
    assert sum(two.values()) == total(step2)
    # the step after: reads everything up to the previous marker
    step3 = body([unmarked, *turn(1), *turn(2, mark_assistant=True)])
    three = fake.usage(step3)
    assert three["cache_read_input_tokens"] == two["cache_read_input_tokens"] + two["cache_creation_input_tokens"]


def test_a_changed_earlier_block_misses_the_cache_from_there_on() -> None:
    fake = FakeAnthropic()
    fake.usage(body([{"role": "user", "content": [text("question " * 50, mark=True)]}]))
    changed = fake.usage(body([{"role": "user", "content": [text("another " * 50, mark=True)]}]))
    tools_and_system = fake.usage(body([{"role": "user", "content": "x"}]))["cache_read_input_tokens"]
    assert changed["cache_read_input_tokens"] == tools_and_system  # the system marker's entry, not the message's
    assert changed["cache_creation_input_tokens"] > 0


def test_the_lookback_reaches_20_blocks_before_a_marker() -> None:
    fake = FakeAnthropic()
    first = [text(f"block {i} " * 20) for i in range(30)]
    first[4] = text("block 4 " * 20, mark=True)
    fake.usage(body([{"role": "user", "content": first}]))
    near, far = copy.deepcopy(first), copy.deepcopy(first)
    del near[4]["cache_control"], far[4]["cache_control"]
    # 20 block boundaries are checked, the marker's own first (the API's example: a marker on block 30 finds
    # entries at blocks 30 down to 11)
    near[23]["cache_control"] = CC  # the written entry is the 20th boundary checked: found
    far[24]["cache_control"] = CC  # the 21st: only the system marker's entry is found
    system_only = FakeAnthropic()
    system_only.usage(body([{"role": "user", "content": "x"}]))
    floor = system_only.usage(body([{"role": "user", "content": "y"}]))["cache_read_input_tokens"]
    got_near = fake.usage(body([{"role": "user", "content": near}]))["cache_read_input_tokens"]
    got_far = FakeAnthropic()
    got_far.usage(body([{"role": "user", "content": first}]))
    assert got_near > floor
    assert got_far.usage(body([{"role": "user", "content": far}]))["cache_read_input_tokens"] == floor


def test_short_prefixes_and_expired_entries_are_not_read() -> None:
    short = FakeAnthropic(min_cacheable_tokens=10**6)
    b = body([{"role": "user", "content": "q"}])
    assert short.usage(b)["cache_creation_input_tokens"] == 0 and short.usage(b)["cache_read_input_tokens"] == 0
    ttl = FakeAnthropic(ttl_s=0.05)
    assert ttl.usage(b)["cache_creation_input_tokens"] > 0
    assert ttl.usage(b)["cache_read_input_tokens"] > 0  # a read refreshes the entry...
    time.sleep(0.1)
    expired = ttl.usage(b)  # ...but not for ever
    assert expired["cache_read_input_tokens"] == 0 and expired["cache_creation_input_tokens"] > 0


# ---------------------------------------------------------------- where the conversation puts its markers
def markers(messages: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(m, b) for m, msg in enumerate(messages) for b, blk in enumerate(msg["content"]) if "cache_control" in blk]


def tool_turn(conv: Conversation, n: int, raw: str, facts: str | None) -> None:
    conv.assistant(
        [{"type": "text", "text": f"step {n}"}, {"type": "tool_use", "id": f"t{n}", "name": "x", "input": {}}]
    )
    entry = conv.user([{"type": "tool_result", "tool_use_id": f"t{n}", "content": raw}])
    if facts is not None:
        entry.facts = {f"t{n}": facts}


def test_the_marker_sits_before_the_raw_output_that_will_be_replaced_and_the_history_stays_clean() -> None:
    conv = Conversation.of([{"role": "user", "content": "why?"}])
    assert markers(conv.messages(breakpoints=2)) == [(0, 0)]  # only the prompt so far
    tool_turn(conv, 1, "RAW-1 " * 200, "- fact 1")
    step2 = conv.messages(breakpoints=2)
    assert markers(step2) == [(0, 0), (1, 1)]  # the previous marker, and the end of the assistant turn
    assert "RAW-1" in str(step2[2])  # the raw output comes after the last marker
    conv.compress_tool_results()
    tool_turn(conv, 2, "RAW-2 " * 200, "- fact 2")
    step3 = conv.messages(breakpoints=2)
    assert markers(step3) == [(1, 1), (3, 1)]
    assert FACTS_MARKER in str(step3[2]) and "RAW-1" not in str(step3)
    # the prefix up to step 2's last marker is byte-identical in step 3 (markers aside)
    assert [_plain(m) for m in step3[:2]] == [_plain(m) for m in step2[:2]]
    assert all("cache_control" not in b for e in conv.entries for b in e.content)  # markers only in payloads
    assert markers(conv.messages()) == []  # no breakpoints asked: none


def test_without_compression_or_with_short_outputs_the_whole_conversation_is_stable() -> None:
    conv = Conversation.of([{"role": "user", "content": "why?"}])
    tool_turn(conv, 1, "RAW " * 200, "- fact")
    assert markers(conv.messages(breakpoints=1, compressing=False)) == [(2, 0)]
    short = Conversation.of([{"role": "user", "content": "why?"}])
    tool_turn(short, 1, "short output", None)  # nothing to replace: its facts are its content
    assert markers(short.messages(breakpoints=1)) == [(2, 0)]


def test_thinking_blocks_never_carry_a_marker() -> None:
    conv = Conversation.of([{"role": "user", "content": "why?"}])
    conv.assistant([{"type": "text", "text": "answer"}, {"type": "redacted_thinking", "data": "xyz"}])
    assert markers(conv.messages(breakpoints=1)) == [(1, 0)]


def test_at_most_four_markers_the_latest_message_ones_kept() -> None:
    request: dict[str, Any] = {
        "tools": [{"name": "a", "cache_control": CC}],
        "system": [{"type": "text", "text": "s", "cache_control": CC}],
        "messages": [{"role": "user", "content": [text(str(i), mark=True) for i in range(4)]}],
    }
    cap_breakpoints(request)
    assert [("cache_control" in b) for b in request["messages"][0]["content"]] == [False, False, True, True]
    assert "cache_control" in request["tools"][0] and "cache_control" in request["system"][0]


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in message["content"]]}

"""Benchmark: prompt tokens of a scripted 8-step investigation, with and without the context discipline.

    .venv/bin/python bench/llm_context.py [--steps 8] [--output-chars 6000]

The real runtime and SDK talk to the fake Messages API server (tests/support/fake_anthropic.py), which answers
each step with two parallel tool calls and finally the root cause; each tool returns `--output-chars` of log
text and a few facts. Then a report phase runs. Prompt tokens are counted from the requests the server received
(serialized system + messages + tools, len/4, the fake's own estimate), per step:

- without: raw tool outputs stay in the history; the report phase continues the same conversation;
- with:    after each step raw outputs are replaced by their facts; the report phase starts from a prompt rebuilt
           from the investigation's structured result only.

Then the real investigation agent (services/diagnosis/investigation.py, the shipped config/) on a real git
repository: prepare, plan, `--steps` investigate steps of two parallel real tool calls (read_file of about
`--output-chars` characters, search_code), findings, report, grounding. Printed: prompt tokens per call and the
growth per step (goal <= 1.5k tokens/step), the total against a naive full-history loop (one conversation, raw
outputs kept, the report asked in the same conversation), the cache-read share of the calls after the first (as
the fake server reports usage: it simulates the API's prompt cache on the markers the runtime puts on tools,
system prompt and the conversation's stable prefix, with a 1024-token minimum; goal >= 80%), the cost of the
prompts in input-token equivalents (cache writes x1.25, reads x0.1), and the wall time of the platform's own
share (the fake answers at once: git, tools, runtime, SDK, grounding). Every other investigate step also
updates the task list (which must not cost the cached history).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel

from pagerpatch.llm import LlmRuntime, ToolOutput, ToolRegistry, phase_prompt
from pagerpatch.llm.structured import tool_name
from tests.support import fake_anthropic as fa
from tests.support.fake_anthropic import FakeAnthropic, estimate_tokens
from tests.support.llm_env import ECHO_TOOL, llm_settings, write_config


class RootCause(BaseModel):
    summary: str
    file: str
    commit: str


class Report(BaseModel):
    title: str
    body: str


def make_registry(output_chars: int) -> ToolRegistry:
    def log_text(kind: str, query: str) -> str:
        line = f"2026-05-01T12:00:00Z ERROR checkout {kind} {query}: KeyError 'SUMMER25' in pricing.apply_coupon\n"
        return (line * (output_chars // len(line) + 1))[:output_chars]

    def search_logs(value: str) -> ToolOutput:
        return ToolOutput(log_text("logs", value), facts=[f"{value}: 1,204 KeyError 'SUMMER25' since 11:58"])

    def read_code(value: str) -> ToolOutput:
        return ToolOutput(log_text("code", value), facts=[f"{value}: apply_coupon indexes COUPONS[code] directly"])

    registry = ToolRegistry()
    registry.register("search_logs", search_logs)
    registry.register("read_code", read_code)
    return registry


def script(fake: FakeAnthropic, steps: int) -> None:
    for i in range(steps):
        fake.script(fa.tool_uses([("search_logs", {"value": f"q{i}"}, None), ("read_code", {"value": f"f{i}"}, None)]))
    fake.script(
        fa.tool_use(tool_name(RootCause), {"summary": "coupon lookup", "file": "pricing.py", "commit": "3f2a9c1"})
    )
    fake.script(fa.tool_use(tool_name(Report), {"title": "Fix coupon lookup", "body": "..."}))


async def run(disciplined: bool, steps: int, output_chars: int, cfg: Path) -> list[int]:
    fake = FakeAnthropic().start()
    rt: LlmRuntime | None = None
    try:
        script(fake, steps)
        rt = LlmRuntime.create(llm_settings(fake.url, cfg, max_steps=steps + 1), None, make_registry(output_chars))
        found = await rt.run_tools(
            agent="diagnosis",
            step="investigate",
            prompt="Checkout returns 500 since 11:58. Find the root cause.",
            output=RootCause,
            compress=disciplined,
        )
        assert found.output is not None
        if disciplined:
            report_conv = phase_prompt(found.output, phase="report", task="Write the incident report.")
            await rt.structured(agent="diagnosis", step="report", output=Report, messages=report_conv.messages())
        else:
            found.conversation.user("Write the incident report.")
            await rt.structured(agent="diagnosis", step="report", output=Report, messages=found.conversation.messages())
        return [estimate_tokens({k: r.body.get(k) for k in ("system", "messages", "tools")}) for r in fake.requests]
    finally:
        if rt is not None:
            await rt.aclose()  # inside the loop that made it (no "Event loop is closed" at exit)
        fake.stop()


# ---------------------------------------------------------------- the real investigation agent
CONFIG = Path(__file__).resolve().parents[1] / "config"


def agent_repo(root: Path, output_chars: int) -> tuple[Path, str, str]:
    """A git repository with the coupon bug and a module big enough for `output_chars` per read; its traceback."""
    from tests.support.git import Repo

    repo = Repo.init(root / "shop")
    safe = (
        'COUPONS = {"SAVE10": 0.1}\n\n\ndef apply_coupon(total, code):\n    rate = COUPONS.get(code, 0.0)\n'
        "    return round(total * (1 - rate), 2)\n"
    )
    lines = "".join(
        f"def helper_{n:04d}(value):\n    return value + {n}  # keeps the catalog in order\n\n" for n in range(2000)
    )
    repo.commit({"shop/__init__.py": "", "shop/pricing.py": safe, "shop/catalog.py": lines}, "initial import")
    bug = repo.commit({"shop/pricing.py": safe.replace("COUPONS.get(code, 0.0)", "COUPONS[code]")}, "pricing: direct")
    trace = repo.run("from shop.pricing import apply_coupon; apply_coupon(1.0, 'NOPE')").stderr
    return repo.path, bug, trace


def agent_script(fake: FakeAnthropic, steps: int, output_chars: int, bug: str, *, phases: bool) -> None:
    per_line = 70  # characters of one numbered line of shop/catalog.py as read_file shows it
    if phases:
        fake.script(
            fa.tool_use(
                "emit_investigation_context",
                {"goal": "Why does apply_coupon raise KeyError?", "alert_summary": "KeyError 'NOPE'"},
            ),
            fa.tool_use("emit_plan", {"tasks": [f"task {i}" for i in range(4)]}),
        )
    for i in range(steps):
        read = {"path": "shop/catalog.py", "start_line": 1 + i * 200, "max_lines": max(1, output_chars // per_line)}
        calls: list[tuple[str, dict[str, Any], str | None]] = [
            ("read_file", read, None),
            ("search_code", {"pattern": f"helper_0{i}[0-4]"}, None),
        ]
        if phases and i % 2 == 1:  # the task list changes: the next request's cached prefix must not
            calls.append(("update_tasks", {"done": [1 + i // 2 % 4]}, None))
        fake.script(fa.tool_uses(calls, say=f"Step {i + 1}: reading the next part of the catalog."))
    fake.script(
        fa.tool_use(
            "emit_findings",
            {
                "hypothesis": f"{bug[:7]} indexes COUPONS directly",
                "facts": ["shop/pricing.py:5 is rate = COUPONS[code]"],
            },
        )
    )
    fake.script(
        fa.tool_use(
            "emit_report_draft",
            {
                "summary": "Unknown coupons crash.",
                "root_cause": f"apply_coupon() indexes COUPONS since {bug[:7]}.",
                "evidence": [{"file": "shop/pricing.py", "line": 5, "symbol": "apply_coupon", "commit": bug}],
                "suspect_commit": bug,
                "confidence": 0.9,
            },
        )
    )


async def run_agent(
    steps: int, output_chars: int, root: Path, *, phases: bool
) -> tuple[list[int], list[Any], float, list[dict[str, Any]]]:
    """Prompt tokens per call, the ledger's call records, the wall time of the whole diagnosis, the requests."""
    import time
    import uuid

    from pagerpatch.git.worktrees import Workspaces
    from pagerpatch.knowledge import MemoryKnowledge
    from pagerpatch.llm.ledger import MemoryLedger
    from pagerpatch.settings import RepoConfig
    from schemas.events import IncidentOpenedPayload, Severity
    from services.diagnosis.adapters import GitCheckouts, GitHistory
    from services.diagnosis.domain.investigation import Findings, ReportDraft, StaticFacts
    from services.diagnosis.investigation import Investigation
    from services.diagnosis.memory import MemoryAudit, MemoryRepos
    from services.diagnosis.usecase import Diagnosis, checkout_and_diagnose

    (root / ("phases" if phases else "naive")).mkdir()
    path, bug, trace = agent_repo(root / ("phases" if phases else "naive"), output_chars)
    fake = FakeAnthropic(min_cacheable_tokens=1024).start()
    rt: LlmRuntime | None = None
    try:
        agent_script(fake, steps, output_chars, bug, phases=phases)
        settings = llm_settings(fake.url, CONFIG, max_steps=steps + 1)
        rt = LlmRuntime.create(settings, None, ToolRegistry(settings))
        cfg = RepoConfig(name="shop", path=str(path), services=["shop"])
        incident = IncidentOpenedPayload(
            fingerprint="f", title="coupon fails", service="shop", repo="shop", severity=Severity.P2, stack_trace=trace
        )
        started = time.perf_counter()
        if phases:
            diagnosis = Diagnosis(
                MemoryRepos({"shop": cfg}),
                GitCheckouts(Workspaces(root / "ws")),
                MemoryAudit(),
                Investigation(rt, MemoryKnowledge([])),
            )
            payload = await diagnosis.diagnose(uuid.uuid4(), incident)
            assert payload is not None and payload.report is not None, payload
        else:  # one conversation from the static facts, raw outputs kept, the report asked in the same one
            from contextlib import ExitStack

            with ExitStack() as stack:
                det, history = checkout_and_diagnose(
                    GitCheckouts(Workspaces(root / "ws-naive")), cfg, "naive", incident, stack
                )
                assert isinstance(history, GitHistory)
                facts = StaticFacts(incident, det, ("shop/pricing.py",)).render()
                found = await rt.run_tools(
                    agent="diagnosis",
                    step="investigate",
                    prompt=facts,
                    output=Findings,
                    compress=False,
                    tool_context={"workspace": str(history.path), "rev": det.base_commit},
                )
                found.conversation.user("Write the incident's structured root cause.")
                await rt.structured(
                    agent="diagnosis", step="report", output=ReportDraft, messages=found.conversation.messages()
                )
        wall = time.perf_counter() - started
        tokens = [estimate_tokens({k: r.body.get(k) for k in ("system", "messages", "tools")}) for r in fake.requests]
        assert isinstance(rt.ledger, MemoryLedger)
        return tokens, list(rt.ledger.calls), wall, [r.body for r in fake.requests]
    finally:
        if rt is not None:
            await rt.aclose()  # inside the loop that made it (no "Event loop is closed" at exit)
        fake.stop()


def resent_tokens(bodies: list[dict[str, Any]]) -> list[int]:
    """Per request, the tokens of its longest prefix (whole blocks, tools -> system -> messages) that an earlier
    request already sent: the most any cache could read, wherever the markers are."""
    seen: set[str] = set()
    out = []
    for body in bodies:
        blocks, _ = fa.prompt_blocks(body)
        running, chars, best = str(body.get("model")), 0, 0
        for *place, block in blocks:
            canon = json.dumps(block, sort_keys=True, ensure_ascii=False)
            running = hashlib.sha256((running + json.dumps(place) + canon).encode()).hexdigest()
            chars += len(canon) + 2
            if running in seen:
                best = chars // 4
            seen.add(running)
        out.append(best)
    return out


def cache_figures(calls: list[Any]) -> tuple[float, float]:
    """The cache-read share of the prompts after the first call, and all prompts' cost in input-token equivalents
    (writes x1.25, reads x0.1, the API's multipliers)."""
    later = [c.usage for c in calls[1:]]
    read = sum(u.cache_read_tokens for u in later)
    total = sum(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens for u in later)
    cost = sum(
        c.usage.input_tokens + 1.25 * c.usage.cache_write_tokens + 0.1 * c.usage.cache_read_tokens for c in calls
    )
    return read / max(1, total), cost


def agent_report(steps: int, output_chars: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        naive, naive_calls, naive_wall, _ = asyncio.run(run_agent(steps, output_chars, Path(tmp), phases=False))
        tokens, calls, wall, bodies = asyncio.run(run_agent(steps, output_chars, Path(tmp), phases=True))
    labels = ["prepare", "plan", *[f"investigate {i + 1}" for i in range(steps)], "findings", "report"]
    print(f"\nthe investigation agent: {steps} steps of read_file (~{output_chars} chars) + search_code in parallel")
    print(f"{'call':<16}{'prompt':>10}{'growth':>10}{'cache read':>12}{'written':>10}{'uncached':>10}")
    for i, (label, n, c) in enumerate(zip(labels, tokens, calls, strict=True)):
        growth = n - tokens[i - 1] if label.startswith("investigate") and i > 2 else 0
        u = c.usage
        share = u.cache_read_tokens / max(1, u.input_tokens + u.cache_read_tokens + u.cache_write_tokens)
        print(f"{label:<16}{n:>10}{growth:>10}{share:>11.0%}{u.cache_write_tokens:>10}{u.input_tokens:>10}")
    inv = tokens[2 : 2 + steps]
    worst = max(b - a for a, b in itertools.pairwise(inv)) if len(inv) > 1 else 0
    share, cost = cache_figures(calls)
    naive_share, naive_cost = cache_figures(naive_calls)
    fresh = sum(c.usage.input_tokens for c in calls[3 : 3 + steps])
    resent = sum(resent_tokens(bodies))
    read = sum(c.usage.cache_read_tokens for c in calls)
    print(f"growth per investigate step: at most {worst} tokens (goal <= 1500: {'met' if worst <= 1500 else 'MISSED'})")
    print(
        f"total prompt tokens: {sum(tokens)} vs {sum(naive)} for a naive full-history loop "
        f"({100 * (1 - sum(tokens) / sum(naive)):.0f}% fewer; {len(naive)} naive calls)"
    )
    print(
        f"cache-read share after the first call: {share:.0%} (goal >= 80%: {'met' if share >= 0.8 else 'MISSED'}); "
        f"naive loop {naive_share:.0%}"
    )
    print(
        f"  uncached in investigate 2..{steps} and findings: {fresh} tokens: each step's new raw tool output "
        "(seen once, then facts) and the task list"
    )
    print(f"  tokens an earlier call had already sent: {resent}; read from cache: {read} ({read / max(1, resent):.0%})")
    print(
        f"prompt cost in input-token equivalents: {cost:.0f} vs {naive_cost:.0f} for the naive loop with the same "
        f"caching ({100 * (1 - cost / naive_cost):.0f}% less)"
    )
    print(
        f"platform wall time (model answers instantly): {wall:.2f}s for the whole diagnosis "
        f"({1000 * wall / len(tokens):.0f} ms per model call); naive loop {naive_wall:.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--output-chars", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tools: dict[str, Any] = {
            "search_logs": {**ECHO_TOOL, "description": "Search the logs.", "permissions": ["logs:read"]},
            "read_code": {**ECHO_TOOL, "description": "Read code.", "permissions": ["logs:read"]},
        }
        agents = {
            "diagnosis": {
                "system_prompts": ["prompts/diagnosis.md"],
                "tools": ["search_logs", "read_code"],
                "permissions": ["logs:read"],
            }
        }
        prompt = (Path(__file__).resolve().parents[1] / "config" / "prompts" / "diagnosis.md").read_text()
        cfg = write_config(Path(tmp), tools=tools, agents=agents, prompts={"prompts/diagnosis.md": prompt})
        without = asyncio.run(run(False, args.steps, args.output_chars, cfg))
        with_ = asyncio.run(run(True, args.steps, args.output_chars, cfg))
    labels = [f"investigate {i + 1}" for i in range(args.steps)] + ["final answer", "report"]
    print(f"prompt tokens per call (len/4 of system+messages+tools; tool output {args.output_chars} chars x 2/step)")
    print(f"{'call':<16}{'without':>10}{'with':>10}{'ratio':>8}")
    for label, a, b in zip(labels, without, with_, strict=True):
        print(f"{label:<16}{a:>10}{b:>10}{b / a:>8.2f}")
    print(f"{'total':<16}{sum(without):>10}{sum(with_):>10}{sum(with_) / sum(without):>8.2f}")
    print(f"reduction: {100 * (1 - sum(with_) / sum(without)):.0f}% fewer prompt tokens with the context discipline")
    agent_report(args.steps, args.output_chars)


if __name__ == "__main__":
    main()

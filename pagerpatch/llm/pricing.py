"""Token prices, call costs and the conservative pre-call estimate that budgets are checked against."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pagerpatch.settings import ModelPrice

# Claude tokenizers average 3.5–4 characters per token on English and code; 3 over-counts on purpose, so an
# estimate errs towards refusing a call rather than overspending.
CHARS_PER_TOKEN_ESTIMATE = 3.0


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


def price_for(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice:
    """The model's price: exact name, else the longest listed prefix (dated snapshots), else "default"."""
    if model in prices:
        return prices[model]
    prefixes = [name for name in prices if name != "default" and model.startswith(name)]
    if prefixes:
        return prices[max(prefixes, key=len)]
    if "default" in prices:
        return prices["default"]
    raise KeyError(f"no price for model {model!r} and no 'default' entry in llm.prices")


def cost_usd(usage: Usage, price: ModelPrice) -> float:
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * price.cache_read
        + usage.cache_write_tokens * price.cache_write
    ) / 1_000_000


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """Rough, deliberately high count of the tokens a request's system, messages and tools will cost."""
    parts = {k: request.get(k) for k in ("system", "messages", "tools", "tool_choice")}
    chars = len(json.dumps(parts, ensure_ascii=False, default=str))
    return math.ceil(chars / CHARS_PER_TOKEN_ESTIMATE)


def estimate_cost_usd(request: Mapping[str, Any], price: ModelPrice) -> float:
    """Upper bound of a call's cost: every input token at the dearer of input/cache-write, and all of max_tokens."""
    max_tokens = int(request.get("max_tokens", 0))
    return (estimate_input_tokens(request) * max(price.input, price.cache_write) + max_tokens * price.output) / 1e6

"""Structured output: a pydantic model as a forced tool, validation, and the repair request (pure helpers)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from anthropic.types import Message

M = TypeVar("M", bound=BaseModel)

REPAIR_SYSTEM = (
    "You correct structured answers so that they validate against a JSON Schema. Keep the content of the "
    "answer; change only what the validation errors name. Answer by calling the tool."
)


def tool_name(model: type[BaseModel]) -> str:
    """`emit_<snake_case model name>`, a valid Messages API tool name."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()
    return ("emit_" + re.sub(r"[^a-z0-9_]", "_", snake))[:64]


def output_tool(model: type[BaseModel], description: str | None = None) -> dict[str, Any]:
    """The tool whose input schema is the model's JSON Schema."""
    doc = (model.__doc__ or "").strip()
    return {
        "name": tool_name(model),
        "description": description or (f"Give the final answer. {doc}".strip() if doc else "Give the final answer."),
        "input_schema": model.model_json_schema(),
    }


def forced(model: type[BaseModel]) -> dict[str, Any]:
    return {"type": "tool", "name": tool_name(model)}


def answer_of(message: Message, model: type[BaseModel]) -> tuple[str | None, Any]:
    """The tool_use id and input the model gave for the output tool, or (None, text) when it did not call it."""
    name = tool_name(model)
    for block in message.content:
        if block.type == "tool_use" and block.name == name:
            return block.id, block.input
    text = "".join(b.text for b in message.content if b.type == "text")
    return None, text


def validate(model: type[M], answer: Any) -> tuple[M | None, list[str]]:
    """The validated answer, or the validation errors as readable lines."""
    if not isinstance(answer, dict):
        return None, [f"expected a tool call with a JSON object, got {type(answer).__name__}: {str(answer)[:200]!r}"]
    try:
        return model.model_validate(answer), []
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(root)"
            got = json.dumps(err.get("input"), default=str)[:200]
            lines.append(f"{where}: {err['msg']} (got {got})")
        return None, lines


def repair_messages(model: type[BaseModel], answer: Any, errors: list[str]) -> list[dict[str, Any]]:
    """A self-contained repair request: the invalid answer and what is wrong with it."""
    shown = json.dumps(answer, ensure_ascii=False, default=str) if isinstance(answer, dict) else str(answer)
    return [
        {
            "role": "user",
            "content": (
                f"This answer for `{tool_name(model)}` failed validation.\n\n<answer>\n{shown[:20000]}\n</answer>\n\n"
                "<validation_errors>\n" + "\n".join(errors) + "\n</validation_errors>\n\n"
                "Call the tool with the corrected answer."
            ),
        }
    ]

"""Helpers for agent-runtime tests: a config directory written from dicts, and settings pointing at a fake server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pagerpatch.llm.registry import ToolRegistry
from pagerpatch.settings import Settings

ECHO_TOOL: dict[str, Any] = {
    "description": "Echo a value back.",
    "parameters": {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]},
    "permissions": ["test:read"],
    "owner": "tests",
}


def write_config(
    root: Path,
    *,
    tools: dict[str, Any] | None = None,
    agents: dict[str, Any] | None = None,
    policies: dict[str, Any] | None = None,
    prompts: dict[str, str] | None = None,
) -> Path:
    """A config directory with the given files (an `investigator` agent and an `echo` tool by default)."""
    root.mkdir(parents=True, exist_ok=True)
    prompts = (
        prompts if prompts is not None else {"prompts/investigator.md": "You investigate incidents. STATIC-PROMPT"}
    )
    for rel, body in prompts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body)
    if tools is None:
        tools = {"echo": ECHO_TOOL}
    if agents is None:
        agents = {
            "investigator": {
                "model": "claude-sonnet-4-6",
                "cheap_model": "claude-haiku-4-5",
                "system_prompts": ["prompts/investigator.md"],
                "tools": ["echo"],
                "permissions": ["test:read"],
            }
        }
    (root / "tools.yaml").write_text(yaml.safe_dump({"tools": tools}, sort_keys=False))
    (root / "agents.yaml").write_text(yaml.safe_dump({"agents": agents}, sort_keys=False))
    if policies is not None:
        (root / "policies.yaml").write_text(yaml.safe_dump(policies, sort_keys=False))
    return root


def echo(value: str) -> str:
    return value


def registry_with_echo() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register("echo", echo)
    return registry


def llm_settings(base_url: str, config_dir: Path, **llm: Any) -> Settings:
    """Settings for a runtime talking to `base_url` (fast retries unless overridden)."""
    values: dict[str, Any] = {
        "base_url": base_url,
        "config_dir": config_dir,
        "retry_base_s": 0.01,
        "retry_cap_s": 5.0,
        "timeout_s": 10.0,
        **llm,
    }
    return Settings(llm=values, anthropic_api_key="sk-ant-test-key-000000000000")

"""Tool registry: Python callables registered by name, bound to their tools.yaml declarations at start-up."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pagerpatch.llm.config import TOOLS_FILE, Governance, ToolSpec
from pagerpatch.settings import ConfigError, _line_of

log = logging.getLogger(__name__)

ToolFn = Callable[..., Any]


@dataclass(frozen=True)
class ToolOutput:
    """What a tool may return instead of a plain value: the raw text and, optionally, the facts drawn from it.

    The facts replace the raw text in the conversation once the model has seen it (context discipline).
    """

    text: str
    facts: list[str] | None = None
    is_error: bool = False


@dataclass(frozen=True)
class ToolContext:
    """Passed to a tool that declares a `ctx` parameter."""

    agent: str
    tool: str
    incident_id: str | None
    team: str | None
    spec: ToolSpec
    extra: dict[str, Any] = field(default_factory=dict)  # what the caller of run_tools passed as `tool_context`


@dataclass(frozen=True)
class BoundTool:
    name: str
    spec: ToolSpec
    fn: ToolFn
    wants_ctx: bool

    def definition(self) -> dict[str, Any]:
        """The Messages API tool definition."""
        return {"name": self.name, "description": self.spec.description, "input_schema": self.spec.parameters}


class ToolRegistry:
    """Callables by name. `bind()` checks them against tools.yaml: a declared tool without a callable fails."""

    def __init__(self) -> None:
        self._fns: dict[str, ToolFn] = {}
        self._bound: dict[str, BoundTool] = {}

    def register(self, name: str, fn: ToolFn | None = None) -> Any:
        """Register `fn` as tool `name`; usable as a decorator: `@registry.register("read_file")`."""

        def add(f: ToolFn) -> ToolFn:
            if name in self._fns and self._fns[name] is not f:
                raise ValueError(f"tool {name!r} is already registered")
            self._fns[name] = f
            return f

        return add(fn) if fn is not None else add

    def bind(self, governance: Governance) -> list[str]:
        """Attach callables to declarations; returns warnings (deprecated tools), raises on missing callables."""
        errors: list[str] = []
        warnings: list[str] = []
        path = governance.config_dir / TOOLS_FILE
        bound: dict[str, BoundTool] = {}
        for name, spec in governance.tools.items():
            fn = self._fns.get(name)
            where = f"{path}:{_line_of(path, ('tools', name)) or '?'}"
            if fn is None and spec.callable:
                try:
                    fn = _import(spec.callable)
                except (ImportError, AttributeError) as exc:
                    line = _line_of(path, ("tools", name, "callable")) or "?"
                    errors.append(f"{path}:{line}: tools.{name}.callable: cannot import {spec.callable!r}: {exc}")
                    continue
            if fn is None:
                errors.append(f"{where}: tools.{name}: no callable registered under this name")
                continue
            if not callable(fn):
                errors.append(f"{where}: tools.{name}: {spec.callable!r} is not callable")
                continue
            if spec.deprecated:
                note = spec.deprecated if isinstance(spec.deprecated, str) else "deprecated"
                warnings.append(f"tool {name!r} is deprecated: {note}")
                log.warning("tool %r is deprecated: %s", name, note)
            bound[name] = BoundTool(name, spec, fn, "ctx" in inspect.signature(fn).parameters)
        if errors:
            raise ConfigError("tool registry:\n  " + "\n  ".join(errors))
        self._bound = bound
        return warnings

    def get(self, name: str) -> BoundTool | None:
        return self._bound.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._bound)


def _import(path: str) -> ToolFn:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]

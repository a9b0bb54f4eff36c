"""Tool registry: Python callables registered by name, bound to their tools.yaml declarations at start-up.

A tool that depends on the deployment (an observability API's URL) declares it: an `available(settings) -> bool`
hook (`@available_when(...)` on the callable) keeps it from being offered when it is not configured, and a
`settings` parameter receives the settings the registry was built with.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pagerpatch.llm.config import TOOLS_FILE, Governance, ToolSpec
from pagerpatch.settings import ConfigError, Settings, get_settings, line_of

log = logging.getLogger(__name__)

ToolFn = Callable[..., Any]
Availability = Callable[[Settings], bool]
F = TypeVar("F", bound=Callable[..., Any])
AVAILABLE_ATTR = "__pagerpatch_available__"


def available_when(check: Availability) -> Callable[[F], F]:
    """Mark a tool callable as offered only when `check(settings)` is true (e.g. its API's URL is configured)."""

    def mark(fn: F) -> F:
        setattr(fn, AVAILABLE_ATTR, check)
        return fn

    return mark


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

    def __init__(self, settings: Settings | None = None) -> None:
        self._fns: dict[str, ToolFn] = {}
        self._bound: dict[str, BoundTool] = {}
        self._unavailable: set[str] = set()
        self._settings = settings  # for availability hooks and `settings` parameters (default: get_settings())

    def register(self, name: str, fn: ToolFn | None = None) -> Any:
        """Register `fn` as tool `name`; usable as a decorator: `@registry.register("read_file")`."""

        def add(f: ToolFn) -> ToolFn:
            if name in self._fns and self._fns[name] is not f:
                raise ValueError(f"tool {name!r} is already registered")
            self._fns[name] = f
            return f

        return add(fn) if fn is not None else add

    def _deployment(self, fn: ToolFn) -> tuple[ToolFn, bool]:
        """`fn` with the settings bound when it takes them, and whether it is available in this deployment."""
        hook: Availability | None = getattr(fn, AVAILABLE_ATTR, None)
        try:
            takes_settings = "settings" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            takes_settings = False
        if hook is None and not takes_settings:
            return fn, True
        if self._settings is None:
            self._settings = get_settings()
        bound_fn = functools.partial(fn, settings=self._settings) if takes_settings else fn
        return bound_fn, hook is None or bool(hook(self._settings))

    def bind(self, governance: Governance, settings: Settings | None = None) -> list[str]:
        """Attach callables to declarations; returns warnings (deprecated tools), raises on missing callables.

        A tool whose availability hook says no is bound but not offered (`get` returns None for it)."""
        if settings is not None:
            self._settings = settings
        unavailable: set[str] = set()
        errors: list[str] = []
        warnings: list[str] = []
        path = governance.config_dir / TOOLS_FILE
        bound: dict[str, BoundTool] = {}
        for name, spec in governance.tools.items():
            fn = self._fns.get(name)
            where = f"{path}:{line_of(path, ('tools', name)) or '?'}"
            if fn is None and spec.callable:
                try:
                    fn = _import(spec.callable)
                except (ImportError, AttributeError) as exc:
                    line = line_of(path, ("tools", name, "callable")) or "?"
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
            fn, available = self._deployment(fn)
            if not available:
                unavailable.add(name)
                log.info("tool %r is not configured in this deployment: not offered", name)
            bound[name] = BoundTool(name, spec, fn, "ctx" in inspect.signature(fn).parameters)
        if errors:
            raise ConfigError("tool registry:\n  " + "\n  ".join(errors))
        self._bound = bound
        self._unavailable = unavailable
        return warnings

    def get(self, name: str) -> BoundTool | None:
        """The bound tool, or None when it is unknown or not available in this deployment (never offered)."""
        return None if name in self._unavailable else self._bound.get(name)

    @property
    def unavailable(self) -> list[str]:
        """Declared tools that are not configured in this deployment (not offered, calls refused)."""
        return sorted(self._unavailable)

    def why_not(self, name: str) -> str:
        """Why `get(name)` is None, for the refusal the model is shown."""
        if name in self._unavailable:
            return f"tool {name!r} is not configured in this deployment"
        return f"tool {name!r} has no registered callable"

    @property
    def names(self) -> list[str]:
        return sorted(self._bound)


def _import(path: str) -> ToolFn:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]

"""The optional YAML settings file: where it is, how it is read, and the line of a key (for error messages)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
)

from pagerpatch.settings.sections import ConfigError


def config_path() -> Path | None:
    """The YAML file in force: PAGERPATCH_CONFIG_FILE, else ./pagerpatch.yaml, else $PAGERPATCH_HOME/pagerpatch.yaml."""
    explicit = os.environ.get("PAGERPATCH_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    here = Path("pagerpatch.yaml")
    if here.exists():
        return here
    home = Path(os.environ.get("PAGERPATCH_HOME", ".pagerpatch")) / "pagerpatch.yaml"
    return home if home.exists() else None


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the optional YAML file; lines of its keys are kept so errors can name them."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = config_path()
        self.data: dict[str, Any] = {}
        if self.path is None:
            return
        if not self.path.exists():
            raise ConfigError(f"{self.path}: config file not found")
        try:
            loaded = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}: invalid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{self.path}: the top level must be a mapping")
        self.data = loaded

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def line_of(path: Path, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line of a key path in a YAML file (for error messages)."""
    try:
        return line_in_text(path.read_text(), loc)
    except OSError:
        return None


def line_in_text(text: str, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of a key path (pydantic's `loc`) in a YAML document; None when the YAML does not parse."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(key):
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line

"""compose.yaml, the Helm chart and the Dockerfile name things that exist: services, modules, settings, paths."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import pytest
import yaml

from pagerpatch.ops.supervisor import SERVICES
from pagerpatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "pagerpatch"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if get_origin(annotation) in (Union, UnionType) and len(args) == 1 else annotation


def _setting_exists(env_name: str) -> bool:
    aliases = {"NATS_URL": "nats_url", "DATABASE_URL": "database_url", "ANTHROPIC_API_KEY": None}
    if env_name in aliases:
        return True
    if not env_name.startswith("PAGERPATCH_"):
        return False
    path = env_name.removeprefix("PAGERPATCH_").lower().split("__")
    if path[0].startswith("console_") and path[0] not in Settings.model_fields:  # flat, as the console names them
        path = ["console", path[0].removeprefix("console_"), *path[1:]]
    model: Any = Settings
    for part in path:  # nested keys must exist all the way down (PAGERPATCH_METRICS__PORT: metrics.port)
        model = _unwrap_optional(model)
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return get_origin(model) in (dict, list)  # a map or list value: its keys are data; a scalar has none
        if part not in fields:
            return part == "config_file" and model is Settings
        model = fields[part].annotation
    return True


@pytest.mark.parametrize(
    ("name", "exists"),
    [("PAGERPATCH_METRICS__PORT", True), ("PAGERPATCH_METRICS__PORT__MORE", False), ("PAGERPATCH_NO_SUCH", False),
     ("NATS_URL", True), ("PAGERPATCH_CONSOLE_PORT", True), ("PAGERPATCH_CONSOLE_NO_SUCH", False)],
)  # fmt: skip
def test_the_setting_check_refuses_names_that_are_no_setting(name: str, exists: bool) -> None:
    assert _setting_exists(name) is exists


def test_compose_runs_every_service_as_its_module() -> None:
    services = _compose()["services"]
    for name in SERVICES:
        assert services[name]["command"] == ["python", "-m", f"services.{name}"], name
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None
    assert {"nats", "postgres", "setup"} <= set(services)
    assert "pagerpatch bus setup" in services["setup"]["command"][-1]
    assert "pagerpatch db migrate" in services["setup"]["command"][-1]


def test_compose_environment_names_are_real_settings() -> None:
    for name, svc in _compose()["services"].items():
        for var in svc.get("environment") or {}:
            if name in ("nats", "postgres"):
                continue
            assert _setting_exists(var), f"{name}: {var} is not a pagerpatch setting"


def test_chart_deploys_every_service_and_only_real_settings() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # The console (templates/console.yaml) is no pipeline service: its Deployment has a template of its own.
    assert set(values["services"]) | {"console"} == set(SERVICES) | {"console"} and values["console"]["enabled"]
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["name"] == "pagerpatch"
    templates = "".join(p.read_text() for p in (CHART / "templates").iterdir())
    for var in set(re.findall(r"name: ((?:PAGERPATCH|NATS|DATABASE)_[A-Z_]+)", templates)) | set(values["env"]):
        assert _setting_exists(var), var
    assert "services.{{ $name }}" in templates


@pytest.mark.parametrize("line", [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("COPY")])
def test_dockerfile_copies_paths_that_exist(line: str) -> None:
    for src in line.split()[1:-1]:
        assert (ROOT / src).exists(), src


def test_the_readme_configuration_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pagerpatch.settings import load_settings

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```yaml\n# pagerpatch.yaml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "pagerpatch.yaml"
    config.write_text(block)
    monkeypatch.setenv("PAGERPATCH_CONFIG_FILE", str(config))
    settings = load_settings()
    assert settings.repos[0].name == "shop"
    assert settings.triage.maintenance[0].name == "reindex"
    assert settings.policy.approval_threshold == "HIGH"

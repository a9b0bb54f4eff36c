"""tools.yaml / agents.yaml / policies.yaml: validation with file:line:field errors, registry, permissions, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pagerpatch.cli import app
from pagerpatch.llm.config import effective_policy, load_governance, load_policies
from pagerpatch.llm.registry import ToolRegistry
from pagerpatch.settings import ConfigError, PolicySettings
from tests.support.llm_env import ECHO_TOOL, write_config

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def errors_of(cfg: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_governance(cfg)
    return str(info.value)


def test_the_shipped_config_is_valid_and_its_tools_import() -> None:
    gov = load_governance(REPO_CONFIG)
    assert {"triage", "diagnosis"} <= set(gov.agents)
    registry = ToolRegistry()
    assert registry.bind(gov) == []
    assert registry.names == sorted(gov.tools)


def test_a_bad_field_names_file_line_and_field(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (cfg / "agents.yaml").write_text(
        "agents:\n"
        "  investigator:\n"
        "    system_prompts: [prompts/investigator.md]\n"
        "    max_steps: lots\n"
        "    tools: [echo]\n"
        "    permissions: [test:read]\n"
    )
    assert f"{cfg / 'agents.yaml'}:4: agents.investigator.max_steps: Input should be a valid integer" in errors_of(cfg)


def test_unknown_keys_are_errors_with_their_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (cfg / "tools.yaml").write_text("tools:\n  echo:\n    description: d\n    owner: me\n    permisions: [x]\n")
    assert f"{cfg / 'tools.yaml'}:5: tools.echo.permisions: Extra inputs are not permitted" in errors_of(cfg)


def test_a_tool_schema_must_be_a_valid_json_schema(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tools={"echo": {**ECHO_TOOL, "parameters": {"type": "object", "properties": 3}}})
    msg = errors_of(cfg)
    assert f"{cfg / 'tools.yaml'}:4: tools.echo.parameters:" in msg and "not a valid JSON Schema" in msg


def test_an_agent_referencing_an_unknown_tool_fails(tmp_path: Path) -> None:
    agents = {"investigator": {"system_prompts": [], "tools": ["echo", "nope"], "permissions": ["test:read"]}}
    cfg = write_config(tmp_path, agents=agents)
    assert f"{cfg / 'agents.yaml'}:6: agents.investigator.tools[1]: unknown tool 'nope'" in errors_of(cfg)


def test_an_agent_listing_a_tool_it_has_no_permission_for_fails(tmp_path: Path) -> None:
    agents = {"investigator": {"system_prompts": [], "tools": ["echo"], "permissions": []}}
    cfg = write_config(tmp_path, agents=agents)
    assert "agents.investigator.tools[0]: tool 'echo' needs permission(s) test:read" in errors_of(cfg)


def test_a_permission_reserved_by_policy_cannot_be_granted(tmp_path: Path) -> None:
    policies = {"permission_rules": [{"permission": "test:*", "agents": ["someone_else"]}]}
    cfg = write_config(tmp_path, policies=policies)
    msg = errors_of(cfg)
    assert f"{cfg / 'agents.yaml'}:10: agents.investigator.permissions[0]: permission 'test:read' is reserved" in msg


def test_missing_prompt_file_is_named(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, prompts={})
    assert "agents.investigator.system_prompts[0]: prompt file 'prompts/investigator.md' not found" in errors_of(cfg)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, policies={})
    (cfg / "policies.yaml").write_text("budgets:\n  per_day_usd: [1\n")
    assert f"{cfg / 'policies.yaml'}:3: invalid YAML" in errors_of(cfg)


def test_a_declared_tool_without_a_callable_fails_start_up(tmp_path: Path) -> None:
    gov = load_governance(write_config(tmp_path))
    with pytest.raises(ConfigError, match=r"tools.yaml:2: tools.echo: no callable registered"):
        ToolRegistry().bind(gov)


def test_an_unimportable_callable_fails_start_up(tmp_path: Path) -> None:
    gov = load_governance(write_config(tmp_path, tools={"echo": {**ECHO_TOOL, "callable": "nowhere.at_all:fn"}}))
    with pytest.raises(ConfigError, match=r"tools.echo.callable: cannot import 'nowhere.at_all:fn'"):
        ToolRegistry().bind(gov)


def test_a_deprecated_tool_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gov = load_governance(write_config(tmp_path, tools={"echo": {**ECHO_TOOL, "deprecated": "use echo2"}}))
    registry = ToolRegistry()
    registry.register("echo", lambda value: value)
    assert registry.bind(gov) == ["tool 'echo' is deprecated: use echo2"]
    assert any("deprecated" in w for w in gov.warnings)
    assert "deprecated" in caplog.text


def test_permission_checks_in_code(tmp_path: Path) -> None:
    tools = {"echo": ECHO_TOOL, "shell": {**ECHO_TOOL, "permissions": ["shell:exec"]}}
    gov = load_governance(write_config(tmp_path, tools=tools))
    assert gov.permitted("investigator", "echo") == (True, "")
    ok, why = gov.permitted("investigator", "shell")
    assert not ok and "not among agent 'investigator'" in why
    assert not gov.permitted("nobody", "echo")[0]
    assert not gov.permitted("investigator", "ghost")[0]


def test_policies_yaml_wins_over_settings_where_it_sets_a_value(tmp_path: Path) -> None:
    write_config(tmp_path, policies={"max_diff_lines": 50, "protected_paths": ["db/**"]})
    base = PolicySettings(max_diff_lines=400, max_files=7, approval_threshold="MEDIUM")
    policy = effective_policy(base, load_policies(tmp_path))
    assert (policy.max_diff_lines, policy.protected_paths, policy.max_files, policy.approval_threshold) == (
        50,
        ["db/**"],
        7,
        "MEDIUM",
    )
    assert effective_policy(base, None) is base
    assert load_policies(tmp_path / "absent") is None


# ------------------------------------------------------------------ pagerpatch config check
def run_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cfg: Path) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    for var in ("PAGERPATCH_CONFIG_FILE", "ANTHROPIC_API_KEY", "PAGERPATCH_LLM__BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PAGERPATCH_LLM__CONFIG_DIR", str(cfg))
    monkeypatch.setenv("PAGERPATCH_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["config", "check"])
    return result.exit_code, result.output


def test_config_check_passes_on_a_valid_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out = run_check(monkeypatch, tmp_path, REPO_CONFIG)
    assert code == 0, out
    assert "configuration ok" in out and "agents: 4" in out


def test_config_check_fails_naming_file_line_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg")
    (cfg / "agents.yaml").write_text("agents:\n  investigator:\n    tools: [ghost]\n")
    code, out = run_check(monkeypatch, tmp_path, cfg)
    assert code == 1
    assert f"{cfg / 'agents.yaml'}:3: agents.investigator.tools[0]: unknown tool 'ghost'" in out
    assert "configuration invalid" in out


def test_config_check_fails_on_bad_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pagerpatch.yaml").write_text("llm:\n  max_steps: 0\n")
    code, out = run_check(monkeypatch, tmp_path, REPO_CONFIG)
    assert code == 1
    assert "pagerpatch.yaml:2: llm.max_steps: Input should be greater than or equal to 1" in out


def test_the_review_service_reads_policies_yaml(tmp_path: Path) -> None:
    from pagerpatch.settings import Settings
    from schemas.events import RiskLevel
    from services.review.settings import risk_policy

    settings = Settings(llm={"config_dir": tmp_path}, policy={"max_diff_lines": 300, "max_files": 4})
    assert risk_policy(settings).max_diff_lines == 300  # no policies.yaml: the settings decide
    (tmp_path / "policies.yaml").write_text("max_diff_lines: 50\napproval_threshold: MEDIUM\n")
    policy = risk_policy(settings)
    assert (policy.max_diff_lines, policy.max_files, policy.approval_threshold) == (50, 4, RiskLevel.MEDIUM)

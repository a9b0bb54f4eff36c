"""Governance files: tools.yaml, agents.yaml and policies.yaml, validated together at start-up.

Every error names the file, the line and the field (`config/agents.yaml:12: agents.triage.tools[0]: ...`).
Cheap to import (no SDK): `pagerpatch config check` and the review service use it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pagerpatch.settings import ConfigError, PolicySettings, Settings, line_of

TOOLS_FILE = "tools.yaml"
AGENTS_FILE = "agents.yaml"
POLICIES_FILE = "policies.yaml"

_NAME = r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$"  # the Messages API's tool name rule, also used for agents


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ tools.yaml
class SandboxLimits(_Strict):
    """Declared limits. The runtime enforces `timeout_s`; the tool applies the rest (e.g. via pagerpatch.sandbox)."""

    cpu: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=16)
    network: bool = False
    timeout_s: float | None = Field(default=None, gt=0)


class ToolSpec(_Strict):
    description: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    permissions: list[str] = Field(default_factory=list)
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits)
    audit: bool = False
    cost_per_call_usd: float = Field(default=0.0, ge=0)
    owner: str = Field(min_length=1)
    version: str = "1"
    deprecated: bool | str = False  # true, or a message such as "use search_code"
    # Optional import path "package.module:function"; otherwise the callable is registered in code by name.
    callable: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")

    @field_validator("parameters")
    @classmethod
    def _json_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(v)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if v.get("type") != "object":
            raise ValueError('the parameters schema must have "type": "object"')
        return v


class ToolsFile(_Strict):
    tools: dict[str, ToolSpec] = Field(default_factory=dict)

    @field_validator("tools")
    @classmethod
    def _names(cls, v: dict[str, ToolSpec]) -> dict[str, ToolSpec]:
        for name in v:
            if not re.match(_NAME, name):
                raise ValueError(f"tool name {name!r} must match {_NAME}")
        return v


# ------------------------------------------------------------------ agents.yaml
class AgentBudget(_Strict):
    per_day_usd: float | None = Field(default=None, ge=0)
    per_incident_usd: float | None = Field(default=None, ge=0)


class StepSpec(_Strict):
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    system_prompts: list[str] = Field(default_factory=list)  # appended to the agent's


class AgentSpec(_Strict):
    model: str | None = None  # default: llm.model
    cheap_model: str | None = None  # repair and formatting; default: llm.cheap_model
    system_prompts: list[str] = Field(default_factory=list)  # files relative to the config directory
    steps: dict[str, StepSpec] = Field(default_factory=dict)
    tools: list[str] = Field(default_factory=list)
    permissions: list[str] = Field(default_factory=list)
    max_steps: int | None = Field(default=None, ge=1, le=100)
    max_parallel_tools: int | None = Field(default=None, ge=1, le=64)
    max_tokens: int | None = Field(default=None, ge=1)
    budget: AgentBudget = Field(default_factory=AgentBudget)


class AgentsFile(_Strict):
    agents: dict[str, AgentSpec] = Field(default_factory=dict)


# ------------------------------------------------------------------ policies.yaml
class PermissionRule(_Strict):
    """Permissions matching `permission` (a glob) may only be granted to `agents` (empty: to none)."""

    permission: str = Field(min_length=1)
    agents: list[str] = Field(default_factory=list)


class BudgetPolicy(_Strict):
    per_day_usd: float | None = Field(default=None, ge=0)  # all agents, all teams, per UTC day
    per_incident_usd: float | None = Field(default=None, ge=0)  # all agents on one incident
    per_team_per_day_usd: float | None = Field(default=None, ge=0)
    teams: dict[str, float] = Field(default_factory=dict)  # per-team daily overrides
    warn_at: float = Field(default=0.8, gt=0, le=1)  # log a warning past this share of a limit

    def team_limit(self, team: str | None) -> float | None:
        if team is not None and team in self.teams:
            return self.teams[team]
        return self.per_team_per_day_usd


class PoliciesFile(_Strict):
    # The review policy: when set here these win over `policy:` in pagerpatch.yaml / PAGERPATCH_POLICY__*.
    approval_threshold: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] | None = None
    protected_paths: list[str] | None = None
    max_diff_lines: int | None = Field(default=None, ge=1)
    max_files: int | None = Field(default=None, ge=1)
    slack_approvers: list[str] | None = None
    permission_rules: list[PermissionRule] = Field(default_factory=list)
    redaction_patterns: dict[str, str] = Field(default_factory=dict)
    budgets: BudgetPolicy = Field(default_factory=BudgetPolicy)

    @field_validator("redaction_patterns")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for name, rx in v.items():
            try:
                re.compile(rx)
            except re.error as exc:
                raise ValueError(f"pattern {name!r} is not a valid regular expression: {exc}") from None
        return v


# ------------------------------------------------------------------ loading
@dataclass(frozen=True)
class Governance:
    """The three files, validated and cross-checked."""

    config_dir: Path
    tools: dict[str, ToolSpec]
    agents: dict[str, AgentSpec]
    policies: PoliciesFile
    warnings: tuple[str, ...] = ()
    prompt_texts: dict[str, str] = field(default_factory=dict)  # relative file -> contents

    def agent(self, name: str) -> AgentSpec:
        try:
            return self.agents[name]
        except KeyError:
            raise ConfigError(f"{self.config_dir / AGENTS_FILE}: no agent named {name!r}") from None

    def permitted(self, agent: str, tool: str) -> tuple[bool, str]:
        """Whether `agent` may call `tool`, and why not. Checked in code on every call, never by the model."""
        spec = self.agents.get(agent)
        tool_spec = self.tools.get(tool)
        if spec is None:
            return False, f"unknown agent {agent!r}"
        if tool_spec is None:
            return False, f"unknown tool {tool!r}"
        if tool not in spec.tools:
            return False, f"tool {tool!r} is not among agent {agent!r}'s allowed tools"
        granted = effective_permissions(agent, spec, self.policies)
        missing = [p for p in tool_spec.permissions if p not in granted]
        if missing:
            return False, f"agent {agent!r} lacks permission(s) {', '.join(missing)} required by tool {tool!r}"
        return True, ""


def effective_permissions(agent: str, spec: AgentSpec, policies: PoliciesFile) -> set[str]:
    """The agent's granted permissions minus those a policy rule reserves for other agents."""
    return {p for p in spec.permissions if not _forbidden(agent, p, policies)}


def _forbidden(agent: str, permission: str, policies: PoliciesFile) -> PermissionRule | None:
    for rule in policies.permission_rules:
        if fnmatch.fnmatchcase(permission, rule.permission) and agent not in rule.agents:
            return rule
    return None


def effective_policy(base: PolicySettings, policies: PoliciesFile | None) -> PolicySettings:
    """The review policy in force: policies.yaml values win over `policy:` in the settings where they are set."""
    if policies is None:
        return base
    update = {
        k: getattr(policies, k)
        for k in ("approval_threshold", "protected_paths", "max_diff_lines", "max_files", "slack_approvers")
        if getattr(policies, k) is not None
    }
    return base.model_copy(update=update) if update else base


def _where(path: Path, loc: tuple[Any, ...]) -> str:
    line = line_of(path, loc) if path.exists() else None
    return f"{path}:{line}" if line else str(path)


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read(path: Path, model: type[BaseModel], errors: list[str]) -> Any:
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        errors.append(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}")
        return None
    if not isinstance(data, dict):
        errors.append(f"{path}:1: the top level must be a mapping")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            errors.append(f"{_where(path, loc)}: {_field(loc) or '(top level)'}: {err['msg']}")
        return None


def load_governance(config_dir: Path, *, required: bool = True) -> Governance:
    """Read and cross-check the three files; raise `ConfigError` listing every problem found."""
    errors: list[str] = []
    warnings: list[str] = []
    tools_path, agents_path, policies_path = (config_dir / n for n in (TOOLS_FILE, AGENTS_FILE, POLICIES_FILE))
    if required:
        for p in (tools_path, agents_path):
            if not p.exists():
                errors.append(f"{p}: file not found (set llm.config_dir / PAGERPATCH_LLM__CONFIG_DIR)")
    tools_file = _read(tools_path, ToolsFile, errors)
    agents_file = _read(agents_path, AgentsFile, errors)
    policies = _read(policies_path, PoliciesFile, errors)
    tools: dict[str, ToolSpec] = tools_file.tools if tools_file else {}
    agents: dict[str, AgentSpec] = agents_file.agents if agents_file else {}
    policies = policies or PoliciesFile()
    prompts: dict[str, str] = {}

    for name, declared in tools.items():
        if declared.deprecated:
            note = declared.deprecated if isinstance(declared.deprecated, str) else "deprecated"
            warnings.append(f"{_where(tools_path, ('tools', name, 'deprecated'))}: tools.{name}: {note}")
    for aname, agent in agents.items():
        if not re.match(_NAME, aname):
            errors.append(f"{_where(agents_path, ('agents', aname))}: agents.{aname}: agent name must match {_NAME}")
        for i, tname in enumerate(agent.tools):
            loc: tuple[Any, ...] = ("agents", aname, "tools", i)
            tool = tools.get(tname)
            if tool is None:
                errors.append(f"{_where(agents_path, loc)}: {_field(loc)}: unknown tool {tname!r} (not in tools.yaml)")
                continue
            granted = effective_permissions(aname, agent, policies)
            missing = [p for p in tool.permissions if p not in granted]
            if missing:
                errors.append(
                    f"{_where(agents_path, loc)}: {_field(loc)}: tool {tname!r} needs permission(s) "
                    f"{', '.join(missing)} that agent {aname!r} is not granted"
                )
            if tool.deprecated:
                warnings.append(f"{_where(agents_path, loc)}: {_field(loc)}: uses deprecated tool {tname!r}")
        for i, perm in enumerate(agent.permissions):
            rule = _forbidden(aname, perm, policies)
            if rule is not None:
                loc = ("agents", aname, "permissions", i)
                errors.append(
                    f"{_where(agents_path, loc)}: {_field(loc)}: permission {perm!r} is reserved by policies.yaml "
                    f"rule {rule.permission!r} for {', '.join(rule.agents) or 'no agent'}"
                )
        prompt_locs: list[tuple[Any, ...]] = [
            ("agents", aname, "system_prompts", i) for i in range(len(agent.system_prompts))
        ]
        prompt_files = list(agent.system_prompts)
        for sname, step in agent.steps.items():
            prompt_locs += [
                ("agents", aname, "steps", sname, "system_prompts", i) for i in range(len(step.system_prompts))
            ]
            prompt_files += step.system_prompts
        for rel, loc in zip(prompt_files, prompt_locs, strict=True):
            path = (config_dir / rel).resolve()
            if not path.is_file():
                errors.append(
                    f"{_where(agents_path, loc)}: {_field(loc)}: prompt file {rel!r} not found in {config_dir}"
                )
                continue
            prompts[rel] = path.read_text()
    for i, rule in enumerate(policies.permission_rules):
        for j, a in enumerate(rule.agents):
            if agents and a not in agents:
                rloc: tuple[Any, ...] = ("permission_rules", i, "agents", j)
                warnings.append(f"{_where(policies_path, rloc)}: {_field(rloc)}: no agent named {a!r} in agents.yaml")
    if errors:
        raise ConfigError("invalid agent runtime configuration:\n  " + "\n  ".join(errors))
    return Governance(config_dir, tools, agents, policies, tuple(warnings), prompts)


def load_policies(config_dir: Path) -> PoliciesFile | None:
    """policies.yaml alone (None when absent); errors name file, line and field."""
    path = config_dir / POLICIES_FILE
    errors: list[str] = []
    policies = _read(path, PoliciesFile, errors)
    if errors:
        raise ConfigError("invalid policies:\n  " + "\n  ".join(errors))
    return policies  # type: ignore[no-any-return]


def llm_enabled(settings: Settings) -> bool:
    """`llm.enabled` when set; otherwise on with an API key or base URL, or a bedrock/vertex provider."""
    llm = settings.llm
    if llm.enabled is not None:
        return llm.enabled
    if llm.provider != "anthropic":
        return True
    return settings.anthropic_api_key is not None or llm.base_url is not None


def review_policy(settings: Settings) -> PolicySettings:
    """The review policy in force: `policy:` from the settings, overridden by policies.yaml where it sets a value."""
    return effective_policy(settings.policy, load_policies(settings.llm.config_dir))

"""`pagerpatch config check`: settings, tools/agents/policies files, prompt files and tool callables."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from pagerpatch.llm.config import TOOLS_FILE, Governance, llm_enabled, load_governance
from pagerpatch.settings import ConfigError, PolicySettings, Settings, config_path, line_of, load_settings


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_config() -> CheckReport:
    """Everything `config check` validates; errors name file, line and field."""
    report = CheckReport()
    try:
        settings = load_settings()
    except ConfigError as exc:
        report.errors.append(str(exc))
        return report
    report.summary.append(f"settings: ok ({config_path() or 'environment and defaults only'})")
    check_runtime(settings, report)
    return report


def check_runtime(settings: Settings, report: CheckReport) -> Governance | None:
    llm = settings.llm
    enabled = llm_enabled(settings)
    config_dir = llm.config_dir
    if not config_dir.is_dir() and not enabled:
        report.summary.append(f"agent runtime: not configured ({config_dir} absent), LLM disabled")
        return None
    try:
        gov = load_governance(config_dir, required=True)
    except ConfigError as exc:
        report.errors.extend(line.strip() for line in (str(exc).splitlines()[1:] or [str(exc)]))
        return None
    report.warnings.extend(gov.warnings)
    _check_callables(gov, report)
    _check_policy_conflicts(settings, gov, report)
    models = {llm.model, llm.cheap_model}
    for spec in gov.agents.values():
        models |= {m for m in (spec.model, spec.cheap_model) if m}
        models |= {s.model for s in spec.steps.values() if s.model}
    for m in sorted(models):
        if m not in llm.prices and not any(m.startswith(p) for p in llm.prices if p != "default"):
            report.warnings.append(f"llm.prices: no price for model {m!r}; the 'default' price will be charged")
    state = f"enabled ({llm.provider}, {llm.model} / cheap {llm.cheap_model})" if enabled else "disabled (no API key)"
    report.summary += [
        f"llm: {state}",
        f"tools: {len(gov.tools)} ({', '.join(sorted(gov.tools))})",
        f"agents: {len(gov.agents)} ({', '.join(sorted(gov.agents))})",
        f"policies: {len(gov.policies.permission_rules)} permission rule(s), "
        f"{len(gov.policies.redaction_patterns)} extra redaction pattern(s), prompt files: {len(gov.prompt_texts)}",
    ]
    return gov


def _check_callables(gov: Governance, report: CheckReport) -> None:
    path = gov.config_dir / TOOLS_FILE
    for name, spec in gov.tools.items():
        line = line_of(path, ("tools", name, "callable")) or line_of(path, ("tools", name)) or "?"
        if spec.callable is None:
            report.warnings.append(
                f"{path}:{line}: tools.{name}: no `callable:`; it must be registered in code before the runtime starts"
            )
            continue
        module, _, attr = spec.callable.partition(":")
        try:
            obj: object = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            report.errors.append(f"{path}:{line}: tools.{name}.callable: cannot import {spec.callable!r}: {exc}")
            continue
        if not callable(obj):
            report.errors.append(f"{path}:{line}: tools.{name}.callable: {spec.callable!r} is not callable")


def _check_policy_conflicts(settings: Settings, gov: Governance, report: CheckReport) -> None:
    defaults = PolicySettings()
    for key in ("approval_threshold", "protected_paths", "max_diff_lines", "max_files"):
        mine = getattr(gov.policies, key)
        theirs = getattr(settings.policy, key)
        if mine is not None and theirs != getattr(defaults, key) and theirs != mine:
            report.warnings.append(
                f"policy.{key}={theirs!r} from the settings is overridden by policies.yaml ({mine!r})"
            )

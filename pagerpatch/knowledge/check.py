"""`pagerpatch config check`'s part for the knowledge base and the observability tools."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

from pagerpatch.knowledge.parse import load_folder
from pagerpatch.knowledge.store import knowledge_dir
from pagerpatch.llm.check import CheckReport
from pagerpatch.settings import ConfigError, Settings, load_settings


def _host(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.hostname}{f':{p.port}' if p.port else ''}{p.path}"


def observability_lines(settings: Settings) -> tuple[list[str], list[str]]:
    """(summary lines, warnings) saying which observability tools are offered."""
    obs = settings.observability
    lines, warnings = [], []
    for tool, url, token, var in (
        ("prometheus_query", obs.prometheus_url, settings.prometheus_token, "PAGERPATCH_PROMETHEUS_TOKEN"),
        ("loki_query", obs.loki_url, settings.loki_token, "PAGERPATCH_LOKI_TOKEN"),
    ):
        key = "observability." + ("prometheus_url" if tool.startswith("prom") else "loki_url")
        if url:
            auth = "bearer token" if token is not None else "no token"
            lines.append(f"observability: {tool} on ({_host(url)}, {auth})")
        else:
            lines.append(f"observability: {tool} off ({key} not set; not offered to the model)")
            if token is not None:
                warnings.append(f"{var} is set but {key} is not: {tool} stays off")
    return lines, warnings


def check_knowledge(report: CheckReport) -> None:
    """Add the observability tools' state and the knowledge folder's validation to `report`."""
    try:
        settings = load_settings()
    except ConfigError:
        return  # already reported by check_config
    lines, warnings = observability_lines(settings)
    report.summary += lines
    report.warnings += warnings
    folder = knowledge_dir(settings)
    loaded = load_folder(folder)
    if loaded.missing:
        if settings.knowledge.dir is not None:
            report.errors.append(f"knowledge.dir: folder {folder} not found")
        else:
            report.summary.append(f"knowledge: off (no folder {folder}; set knowledge.dir / PAGERPATCH_KNOWLEDGE__DIR)")
        return
    report.errors += loaded.errors
    kinds = Counter(e.kind for e in loaded.entries)
    skipped = f", {len(loaded.errors)} malformed file(s)" if loaded.errors else ""
    report.summary.append(
        f"knowledge: on ({folder}): {kinds['guideline']} guideline(s), {kinds['knowledge']} knowledge, "
        f"{kinds['runbook']} runbook(s){skipped}"
    )

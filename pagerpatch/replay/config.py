"""The configuration a replay runs with: another pagerpatch.yaml (`--config`) and other governance files
(`--agents`, `--policies`) in place of the ones in force, nothing else changed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pagerpatch.llm.config import AGENTS_FILE, POLICIES_FILE, llm_enabled, load_governance
from pagerpatch.settings import Settings

CONFIG_FILE_VARIABLE = "PAGERPATCH_CONFIG_FILE"
PROMPTS = "prompts"


@contextmanager
def config_file(path: Path | None) -> Iterator[None]:
    """While the block runs, the settings tree (and what is found beside it: the knowledge folder) is read from
    `path` instead of the file in force; nothing changes when `path` is None. The variable is put back after."""
    if path is None:
        yield
        return
    before = os.environ.get(CONFIG_FILE_VARIABLE)
    os.environ[CONFIG_FILE_VARIABLE] = str(path.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CONFIG_FILE_VARIABLE, None)
        else:
            os.environ[CONFIG_FILE_VARIABLE] = before


def governance_dir(base: Path, dest: Path, *, agents: Path | None = None, policies: Path | None = None) -> Path:
    """`dest`: a copy of the governance folder `base` with `agents`/`policies` in place of agents.yaml and
    policies.yaml; a `prompts/` folder beside a given file overlays the prompts (so a changed prompt travels with
    its agents file). Checked like at start-up: `ConfigError` names file, line and field."""
    if base.is_dir():
        shutil.copytree(base, dest, dirs_exist_ok=True)
    else:
        dest.mkdir(parents=True, exist_ok=True)
    for given, name in ((agents, AGENTS_FILE), (policies, POLICIES_FILE)):
        if given is None:
            continue
        shutil.copyfile(given, dest / name)
        prompts = given.resolve().parent / PROMPTS
        if prompts.is_dir() and prompts.resolve() != (dest / PROMPTS).resolve():
            shutil.copytree(prompts, dest / PROMPTS, dirs_exist_ok=True)
    return dest


def with_governance(settings: Settings, folder: Path) -> Settings:
    """`settings` reading tools/agents/policies and prompts from `folder`, after checking them there (required
    only when a model is configured: without one, policies.yaml still sets the review policy)."""
    load_governance(folder, required=llm_enabled(settings))
    return settings.model_copy(update={"llm": settings.llm.model_copy(update={"config_dir": folder})})

"""Where the team works: the GitHub, Slack and Linear sections of the settings tree (docs/outbound.md).

Each section is settable in `pagerpatch.yaml` (`github:`, `slack:`, `linear:`) and its secrets by the flat
environment variables the issue names (`PAGERPATCH_GITHUB_TOKEN`, `PAGERPATCH_SLACK_BOT_TOKEN`, ...), read by
`FlatIntegrationEnv` below; the nested form (`PAGERPATCH_GITHUB__TOKEN`) works too, as for every section.
An integration is on when its credentials are configured (`enabled`); nothing is on by default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import PydanticBaseSettingsSource


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepoGithub(_Section):
    """A repository's GitHub home: pull requests for its fixes go to `repo` against `base`."""

    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")  # owner/name
    base: str | None = None  # default: the repository's default_branch
    draft: bool = False
    labels: list[str] = Field(default_factory=list)


class GithubSettings(_Section):
    """GitHub (pull requests): a token, or a GitHub App whose installation tokens are minted and refreshed."""

    api_url: str = "https://api.github.com"  # GitHub Enterprise: https://HOST/api/v3
    token: SecretStr | None = None  # PAGERPATCH_GITHUB_TOKEN
    app_id: str | None = None  # PAGERPATCH_GITHUB_APP_ID
    app_private_key: SecretStr | None = None  # PAGERPATCH_GITHUB_APP_PRIVATE_KEY (PEM text)
    app_private_key_file: Path | None = None  # PAGERPATCH_GITHUB_APP_PRIVATE_KEY_FILE
    installation_id: int | None = None  # default: the App's installation on each repository's owner
    timeout_s: float = Field(default=30.0, gt=0)
    # Pause between writes (GitHub asks integrations to space content-creating requests; 0 in tests).
    write_interval_s: float = Field(default=1.0, ge=0)
    # Reviewers asked when neither the service catalog's owners nor CODEOWNERS name any.
    reviewers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _app_is_complete(self) -> GithubSettings:
        has_key = self.app_private_key is not None or self.app_private_key_file is not None
        if self.app_id and not has_key:
            raise ValueError("github.app_id needs app_private_key or app_private_key_file")
        if has_key and not self.app_id:
            raise ValueError("a GitHub App private key needs github.app_id")
        if self.app_private_key_file is not None and not self.app_private_key_file.is_file():
            raise ValueError(f"github.app_private_key_file: {self.app_private_key_file} is not a file")
        return self

    @property
    def uses_app(self) -> bool:
        return bool(self.app_id)

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.uses_app

    def private_key(self) -> str:
        """The App's PEM private key (from the variable, else the file)."""
        if self.app_private_key is not None:
            return self.app_private_key.get_secret_value()
        if self.app_private_key_file is not None:
            return self.app_private_key_file.read_text()
        raise ValueError("no GitHub App private key configured")

    def describe(self) -> str:
        if not self.enabled:
            return "off (set PAGERPATCH_GITHUB_TOKEN or a GitHub App)"
        how = f"GitHub App {self.app_id}" if self.uses_app else "token"
        return f"on ({how}, {self.api_url})"


class SlackSettings(_Section):
    """Slack (one thread per incident): the bot token and which channel each team's incidents go to."""

    api_url: str = "https://slack.com/api/"  # slack_sdk's base_url
    bot_token: SecretStr | None = None  # PAGERPATCH_SLACK_BOT_TOKEN
    channels: dict[str, str] = Field(default_factory=dict)  # team -> channel (id or name)
    default_channel: str | None = None  # incidents of a team without a channel
    timeout_s: float = Field(default=30.0, gt=0)

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None

    def channel_for(self, team: str | None) -> str | None:
        return self.channels.get(team, self.default_channel) if team else self.default_channel

    def describe(self) -> str:
        if not self.enabled:
            return "off (set PAGERPATCH_SLACK_BOT_TOKEN)"
        return f"on ({len(self.channels)} team channel(s), default {self.default_channel or 'none'}, {self.api_url})"


class LinearSettings(_Section):
    """Linear (issues for failed fixes and long approvals): the API key and each team's Linear team key."""

    api_url: str = "https://api.linear.app/graphql"
    api_key: SecretStr | None = None  # PAGERPATCH_LINEAR_API_KEY
    teams: dict[str, str] = Field(default_factory=dict)  # team -> Linear team key
    default_team: str | None = None  # Linear team key for incidents of a team not listed
    approval_wait_s: float = Field(default=3600.0, gt=0)  # an approval waiting longer opens an issue
    timeout_s: float = Field(default=30.0, gt=0)

    @property
    def enabled(self) -> bool:
        return self.api_key is not None

    def team_for(self, team: str | None) -> str | None:
        return self.teams.get(team, self.default_team) if team else self.default_team

    def describe(self) -> str:
        if not self.enabled:
            return "off (set PAGERPATCH_LINEAR_API_KEY)"
        return f"on ({len(self.teams)} team(s), {self.api_url})"


# The flat variables the issue names -> (section, field). Values given in both places: the variable wins.
FLAT_ENV: dict[str, tuple[str, str]] = {
    "PAGERPATCH_GITHUB_TOKEN": ("github", "token"),
    "PAGERPATCH_GITHUB_APP_ID": ("github", "app_id"),
    "PAGERPATCH_GITHUB_APP_PRIVATE_KEY": ("github", "app_private_key"),
    "PAGERPATCH_GITHUB_APP_PRIVATE_KEY_FILE": ("github", "app_private_key_file"),
    "PAGERPATCH_GITHUB_INSTALLATION_ID": ("github", "installation_id"),
    "PAGERPATCH_GITHUB_API_URL": ("github", "api_url"),
    "PAGERPATCH_SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "PAGERPATCH_SLACK_API_URL": ("slack", "api_url"),
    "PAGERPATCH_LINEAR_API_KEY": ("linear", "api_key"),
    "PAGERPATCH_LINEAR_API_URL": ("linear", "api_url"),
}


class FlatIntegrationEnv(PydanticBaseSettingsSource):
    """The integrations' flat environment variables as nested settings (merged over the YAML file)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for var, (section, name) in FLAT_ENV.items():
            value = os.environ.get(var)
            if value:
                out.setdefault(section, {})[name] = value
        return dict(out)


def describe_integrations(github: GithubSettings, slack: SlackSettings, linear: LinearSettings) -> list[str]:
    """`pagerpatch config check`'s lines: which integration is on, and how."""
    return [f"github: {github.describe()}", f"slack: {slack.describe()}", f"linear: {linear.describe()}"]

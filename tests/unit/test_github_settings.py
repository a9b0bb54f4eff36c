"""The integrations' settings: the flat variables the issue names, the YAML sections, `enabled`, repo.github."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagerpatch.settings import ConfigError, load_settings
from pagerpatch.settings.integrations import describe_integrations

KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAGERPATCH_CONFIG_FILE", raising=False)
    monkeypatch.setenv("PAGERPATCH_HOME", str(tmp_path / "home"))
    for var in ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE",
                "GITHUB_API_URL", "SLACK_BOT_TOKEN", "LINEAR_API_KEY", "SLACK_API_URL", "LINEAR_API_URL"):  # fmt: skip
        monkeypatch.delenv(f"PAGERPATCH_{var}", raising=False)


def test_nothing_is_on_by_default() -> None:
    s = load_settings()
    assert not (s.github.enabled or s.slack.enabled or s.linear.enabled)
    assert s.github.api_url == "https://api.github.com"
    assert s.slack.api_url == "https://slack.com/api/" and s.linear.api_url == "https://api.linear.app/graphql"
    assert s.linear.approval_wait_s == 3600
    assert describe_integrations(s.github, s.slack, s.linear)[0] == (
        "github: off (set PAGERPATCH_GITHUB_TOKEN or a GitHub App)"
    )


def test_flat_variables_and_yaml_sections_merge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pagerpatch.yaml").write_text(
        "github:\n  api_url: https://ghe.example/api/v3\n  token: from-yaml\n"
        "slack:\n  channels: {payments: '#payments-oncall'}\n  default_channel: '#incidents'\n"
        "linear:\n  teams: {payments: PAY}\n  approval_wait_s: 600\n"
        "repos:\n  - name: shop\n    path: /src/shop\n    default_branch: trunk\n"
        "    github: {repo: acme/shop, labels: [pagerpatch, bug]}\n"
    )
    monkeypatch.setenv("PAGERPATCH_GITHUB_TOKEN", "ghp_from_env")
    monkeypatch.setenv("PAGERPATCH_SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("PAGERPATCH_LINEAR_API_KEY", "lin_api_1")
    s = load_settings()
    assert s.github.token is not None and s.github.token.get_secret_value() == "ghp_from_env"  # the variable wins
    assert s.github.api_url == "https://ghe.example/api/v3" and s.github.enabled and not s.github.uses_app
    assert s.slack.enabled and s.slack.channel_for("payments") == "#payments-oncall"
    assert s.slack.channel_for("search") == "#incidents" and s.slack.channel_for(None) == "#incidents"
    assert s.linear.enabled and s.linear.team_for("payments") == "PAY" and s.linear.approval_wait_s == 600
    gh = s.repo("shop").github
    assert gh is not None and (gh.repo, gh.base, gh.draft, gh.labels) == (
        "acme/shop",
        None,
        False,
        ["pagerpatch", "bug"],
    )
    lines = describe_integrations(s.github, s.slack, s.linear)
    assert lines == [
        "github: on (token, https://ghe.example/api/v3)",
        "slack: on (1 team channel(s), default #incidents, https://slack.com/api/)",
        "linear: on (1 team(s), https://api.linear.app/graphql)",
    ]


def test_github_app_key_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text(KEY)
    monkeypatch.setenv("PAGERPATCH_GITHUB_APP_ID", "12345")
    monkeypatch.setenv("PAGERPATCH_GITHUB_APP_PRIVATE_KEY_FILE", str(key))
    s = load_settings()
    assert s.github.enabled and s.github.uses_app and s.github.private_key() == KEY
    assert s.github.describe() == "on (GitHub App 12345, https://api.github.com)"


def test_an_incomplete_app_or_bad_repo_names_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAGERPATCH_GITHUB_APP_ID", "12345")
    with pytest.raises(ConfigError, match="app_id needs app_private_key"):
        load_settings()
    monkeypatch.delenv("PAGERPATCH_GITHUB_APP_ID")
    (tmp_path / "pagerpatch.yaml").write_text("repos:\n  - name: shop\n    path: /x\n    github: {repo: not-a-repo}\n")
    with pytest.raises(ConfigError, match=r"pagerpatch.yaml:4: repos.0.github.repo"):
        load_settings()

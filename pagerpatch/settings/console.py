"""The console's section of the settings tree (`console:` in pagerpatch.yaml; docs/console.md).

Its own environment variables are flat, as the issue names them: `PAGERPATCH_CONSOLE_HOST`,
`PAGERPATCH_CONSOLE_PORT`, `PAGERPATCH_CONSOLE_TOKEN`, `PAGERPATCH_CONSOLE_APPROVERS` (JSON: name -> token); the
section is a settings class of its own so they are read with the same rules as every other variable (the nested
form `PAGERPATCH_CONSOLE__PORT` works too, through the parent tree).
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def is_loopback(host: str) -> bool:
    """Whether `host` binds to this machine alone (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ConsoleSettings(BaseSettings):
    """The read-only web console: loopback by default; anywhere else it refuses to start without a token."""

    model_config = SettingsConfigDict(env_prefix="PAGERPATCH_CONSOLE_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)  # 0: a free port
    # Required on every page when set; required to start at all when `host` is not a loopback address.
    token: SecretStr | None = None
    # People who may approve or reject from the console, each with a personal token (signing in with it names
    # them in approval.decided and the audit log). Without any, the console shows no buttons.
    approvers: dict[str, SecretStr] = Field(default_factory=dict)
    events_shown: int = Field(default=200, ge=1, le=5000)  # live events kept on the page
    # The services' /metrics endpoints the health page reads breaker states from (service -> URL;
    # `PAGERPATCH_CONSOLE_METRICS_URLS` as JSON). Empty: the ones `metrics.ports` gives on this host (`pagerpatch up`).
    metrics_urls: dict[str, str] = Field(default_factory=dict)

    @property
    def token_value(self) -> str:
        """The shared token ('' when none is set)."""
        return self.token.get_secret_value() if self.token is not None else ""

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def startup_problem(self) -> str | None:
        """Why the console must not start with these settings (None: it may)."""
        if not self.loopback and not self.token_value:
            return (
                f"the console is bound to {self.host}, not a loopback address: set PAGERPATCH_CONSOLE_TOKEN "
                "(every page then requires it) or bind it to 127.0.0.1"
            )
        empty = sorted(name for name, tok in self.approvers.items() if not tok.get_secret_value())
        if empty:
            return f"console.approvers: {', '.join(empty)} without a token"
        return None

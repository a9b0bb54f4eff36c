"""The console's pure rules: who may see and decide, ages, diffs, cost aggregation, chart geometry, consumer health.

Plain values in, plain values out; no I/O (the handlers and templates call these).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from pagerpatch.settings.console import ConsoleSettings, is_loopback

# ------------------------------------------------------------------ access


@dataclass(frozen=True)
class Access:
    """What the presented credential allows: nothing, looking, or deciding approvals as `approver`."""

    allowed: bool
    approver: str | None = None
    via_header: bool = False  # sent by a script (no cookie: a cross-site form cannot forge it)


DENIED = Access(allowed=False)


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def resolve_access(cfg: ConsoleSettings, presented: str | None, *, via_header: bool = False) -> Access:
    """An approver's personal token names them; the shared token lets anyone look; without a shared token
    (loopback only: the console refuses to start elsewhere) looking needs nothing."""
    given = presented or ""
    for name, secret in sorted(cfg.approvers.items()):
        if _same(given, secret.get_secret_value()):
            return Access(allowed=True, approver=name, via_header=via_header)
    if not cfg.token_value or _same(given, cfg.token_value):
        return Access(allowed=True, via_header=via_header)
    return DENIED


def signed_in(cfg: ConsoleSettings, token: str) -> Access | None:
    """The access a sign-in with `token` grants: only a real token counts (None: it is neither an approver's
    nor the shared one), even where looking needs none."""
    access = resolve_access(cfg, token)
    if access.approver is not None or (cfg.token_value and _same(token, cfg.token_value)):
        return access
    return None


def host_allowed(cfg: ConsoleSettings, host_header: str) -> bool:
    """Without a token the console trusts that only this machine reaches it: a request naming another host
    (DNS rebinding from a web page) is refused. With a token, the token decides."""
    if cfg.token_value:
        return True
    host = host_header.strip()
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return is_loopback(name.strip("[]")) if name else False


def csrf_token(approver_token: str) -> str:
    """The form token an approval POST carries (derived from the approver's own secret: any replica checks it)."""
    return hmac.new(approver_token.encode(), b"pagerpatch-console-approval", hashlib.sha256).hexdigest()


def csrf_ok(cfg: ConsoleSettings, access: Access, presented: str) -> bool:
    """A cookie-authenticated approval must carry the form's token; a header-authenticated one (a script) need not."""
    if access.via_header:
        return True
    if access.approver is None:
        return False
    secret = cfg.approvers.get(access.approver)
    return secret is not None and _same(presented, csrf_token(secret.get_secret_value()))


# ------------------------------------------------------------------ filters and subjects

FILTER_RE = re.compile(r"^[A-Za-z0-9_.:/@ -]{1,200}$")


def subject_filter(raw: str | None) -> str | None:
    """A NATS subject filter under `pagerpatch.` (None: refused). `incident.>` is taken as `pagerpatch.incident.>`."""
    value = (raw or "").strip() or "pagerpatch.>"
    if not value.startswith("pagerpatch"):
        value = f"pagerpatch.{value}"
    parts = value.split(".")
    if any(not p for p in parts) or ">" in parts[:-1]:
        return None
    if not all(p in ("*", ">") or re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts):
        return None
    return value


@dataclass(frozen=True)
class IncidentFilter:
    state: str | None = None
    service: str | None = None
    team: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> IncidentFilter:
        """Blank or malformed values mean 'any'."""

        def one(key: str) -> str | None:
            value = (query.get(key) or "").strip()
            return value if value and FILTER_RE.match(value) else None

        return cls(state=one("state"), service=one("service"), team=one("team"))

    def query(self) -> str:
        return "&".join(f"{k}={v}" for k, v in (("state", self.state), ("service", self.service),
                                                 ("team", self.team)) if v)  # fmt: skip


# ------------------------------------------------------------------ ages and money


def age(since: datetime, now: datetime) -> str:
    """`42s`, `7m`, `3h 5m`, `2d 4h`: how long ago, coarse enough to read at a glance."""
    s = max(0, int((now - since).total_seconds()))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h {m % 60}m" if m % 60 else f"{h}h"
    return f"{h // 24}d {h % 24}h" if h % 24 else f"{h // 24}d"


def money(usd: Decimal | float) -> str:
    """`$0.0123` under a dollar (model calls are cheap), `$12.34` above; `-` for nothing spent."""
    value = Decimal(str(usd))
    if value == 0:
        return "-"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


# ------------------------------------------------------------------ diffs


@dataclass(frozen=True)
class DiffLine:
    kind: Literal["add", "del", "ctx", "hunk", "meta"]
    text: str
    old: int | None = None
    new: int | None = None


@dataclass(frozen=True)
class DiffFile:
    path: str
    added: int
    removed: int
    status: Literal["added", "removed", "modified", "renamed", "unparsed"] = "modified"
    lines: tuple[DiffLine, ...] = ()


def render_diff(patch: str) -> list[DiffFile]:
    """A unified diff as files of numbered lines; a patch unidiff cannot parse is shown line by line."""
    if not patch.strip():
        return []
    try:
        parsed = PatchSet(patch)
    except UnidiffParseError:
        return [_unparsed(patch)]
    files: list[DiffFile] = []
    for f in parsed:
        lines: list[DiffLine] = []
        for hunk in f:
            header = f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
            lines.append(DiffLine("hunk", f"{header} {hunk.section_header}".rstrip()))
            for ln in hunk:
                text = ln.value.rstrip("\n")
                if ln.is_added:
                    lines.append(DiffLine("add", text, None, ln.target_line_no))
                elif ln.is_removed:
                    lines.append(DiffLine("del", text, ln.source_line_no, None))
                elif ln.is_context:
                    lines.append(DiffLine("ctx", text, ln.source_line_no, ln.target_line_no))
                else:
                    lines.append(DiffLine("meta", text))
        status: Literal["added", "removed", "modified", "renamed"] = (
            "added" if f.is_added_file else "removed" if f.is_removed_file else
            "renamed" if f.is_rename else "modified"
        )  # fmt: skip
        files.append(DiffFile(f.path, f.added, f.removed, status, tuple(lines)))
    return files or [_unparsed(patch)]


def _unparsed(patch: str) -> DiffFile:
    kinds: dict[str, Literal["add", "del", "hunk"]] = {"+": "add", "-": "del", "@": "hunk"}
    lines = tuple(DiffLine(kinds.get(ln[:1], "ctx"), ln) for ln in patch.splitlines())
    added = sum(1 for ln in lines if ln.kind == "add")
    removed = sum(1 for ln in lines if ln.kind == "del")
    return DiffFile("(patch)", added, removed, "unparsed", lines)


# ------------------------------------------------------------------ costs


@dataclass(frozen=True)
class CostRow:
    """One (day, agent, team) cell of the ledger."""

    day: date
    agent: str
    team: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True)
class CostTotal:
    key: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def plus(self, row: CostRow) -> CostTotal:
        return CostTotal(self.key, self.calls + row.calls, self.input_tokens + row.input_tokens,
                         self.output_tokens + row.output_tokens, self.cost_usd + row.cost_usd)  # fmt: skip


@dataclass(frozen=True)
class CostLedger:
    by_agent: list[CostTotal] = field(default_factory=list)
    by_team: list[CostTotal] = field(default_factory=list)
    by_day: list[CostTotal] = field(default_factory=list)
    total: CostTotal = CostTotal("total")


def aggregate_costs(rows: Iterable[CostRow]) -> CostLedger:
    """Totals per agent and team (most expensive first) and per day (in order), and the grand total."""
    agents: dict[str, CostTotal] = {}
    teams: dict[str, CostTotal] = {}
    days: dict[str, CostTotal] = {}
    total = CostTotal("total")
    for r in rows:
        for table, key in ((agents, r.agent), (teams, r.team), (days, r.day.isoformat())):
            table[key] = table.get(key, CostTotal(key)).plus(r)
        total = total.plus(r)

    def ranked(m: dict[str, CostTotal]) -> list[CostTotal]:
        return sorted(m.values(), key=lambda t: (-t.cost_usd, -t.calls, t.key))

    return CostLedger(ranked(agents), ranked(teams), [days[k] for k in sorted(days)], total)


def daily_points(by_day: Sequence[CostTotal], last: date, days: int) -> list[tuple[str, Decimal]]:
    """One point per day of the period ending `last` (UTC), zero on days without a call: the chart's x axis is time."""
    spent = {t.key: t.cost_usd for t in by_day}
    period = [last - timedelta(days=n) for n in range(days - 1, -1, -1)]
    return [(d.isoformat(), spent.get(d.isoformat(), Decimal(0))) for d in period]


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    x: float
    y: float
    width: float
    height: float


def bars(points: Sequence[tuple[str, Decimal]], width: float = 640, height: float = 160) -> list[Bar]:
    """Bar geometry for the cost chart: one bar per point, scaled to the largest value (a zero day is a hairline)."""
    if not points:
        return []
    top = max(v for _, v in points) or Decimal(1)
    slot = width / len(points)
    gap = min(4.0, slot * 0.2)
    out = []
    for i, (label, value) in enumerate(points):
        h = max(1.0, float(value / top) * height) if value > 0 else 1.0
        out.append(Bar(label, value, round(i * slot + gap / 2, 2), round(height - h, 2), round(slot - gap, 2),
                       round(h, 2)))  # fmt: skip
    return out


# ------------------------------------------------------------------ consumer health


@dataclass(frozen=True)
class ConsumerLag:
    durable: str
    service: str
    subject: str
    found: bool
    num_pending: int = 0  # in the stream, not yet delivered
    num_ack_pending: int = 0  # delivered, not yet acknowledged
    num_redelivered: int = 0
    num_waiting: int = 0  # pull requests waiting: a live service instance is asking for work
    last_active: datetime | None = None


def lag_status(c: ConsumerLag, *, behind_after: int = 100) -> str:
    """`missing`, `no reader` (work waits and nobody pulls), `behind`, `busy` or `ok`."""
    if not c.found:
        return "missing (run `pagerpatch bus setup`)"
    if c.num_pending and not c.num_waiting and not c.num_ack_pending:
        return "no reader"
    if c.num_pending >= behind_after:
        return "behind"
    if c.num_ack_pending:
        return "busy"
    return "ok"


# ------------------------------------------------------------------ breakers (read from the services' /metrics)

BREAKER_STATE_NAMES = {0: "closed", 1: "half-open", 2: "open"}  # pagerpatch_breaker_state's values


@dataclass(frozen=True)
class BreakerReading:
    """One service's breaker on one dependency, as its /metrics says; `problem` when the endpoint did not answer."""

    service: str
    dependency: str | None = None
    state: str | None = None
    problem: str | None = None


def breaker_state_name(value: float) -> str:
    return BREAKER_STATE_NAMES.get(int(value), f"unknown ({value:g})")


def metrics_endpoints(urls: Mapping[str, str], host: str, ports: Mapping[str, int]) -> dict[str, str]:
    """Where the services' /metrics are: `console.metrics_urls` when given, else the per-service ports of this host
    (`metrics.ports`, as under `pagerpatch up`; an unspecified bind address is read on loopback)."""
    if urls:
        return dict(sorted(urls.items()))
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return {s: f"http://{shown}:{p}/metrics" for s, p in sorted(ports.items()) if p and s != "console"}

"""Which configured rule applies to an alert (pure): field globs, title regexes, maintenance windows."""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from pagerpatch.settings import AlertMatch, MaintenanceWindow
from services.triage.domain.facts import AlertFacts

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


def _glob(pattern: str | None, value: str | None) -> bool:
    return pattern is None or (value is not None and fnmatch.fnmatchcase(value.lower(), pattern.lower()))


def matches(rule: AlertMatch, alert: AlertFacts) -> bool:
    """Whether `alert` is one the rule applies to (every field the rule gives must match)."""
    if not (_glob(rule.service, alert.service) and _glob(rule.source, alert.source) and _glob(rule.kind, alert.kind)):
        return False
    if rule.title is not None and not _regex(rule.title).search(alert.title):
        return False
    return all(_glob(v, alert.labels.get(k)) for k, v in rule.labels.items())


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_maintenance(window: MaintenanceWindow, at: datetime) -> bool:
    """Whether `at` falls in the window (one-off `starts_at`..`ends_at`, or the weekly recurrence)."""
    if window.starts_at is not None and window.ends_at is not None and window.starts_at <= at < window.ends_at:
        return True
    w = window.weekly
    if w is None:
        return False
    local = at.astimezone(ZoneInfo(w.timezone))
    minute, day = local.hour * 60 + local.minute, DAYS[local.weekday()]
    start, end = _minutes(w.start), _minutes(w.end)
    if start < end:
        return day in w.days and start <= minute < end
    yesterday = DAYS[(local.weekday() - 1) % 7]  # the window wraps past midnight
    return (day in w.days and minute >= start) or (yesterday in w.days and minute < end)

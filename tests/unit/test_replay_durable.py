"""`events replay`'s checks, before anything is touched: start times, names, and the consumer it makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nats.js.api import AckPolicy, DeliverPolicy

from pagerpatch.replay.durable import Refused, check_name, checked_start, consumer_config, parse_since

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("1.5d", NOW - timedelta(hours=36)),
        ("1w", NOW - timedelta(days=7)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-04-30T08:00:00Z", datetime(2026, 4, 30, 8, tzinfo=UTC)),
        ("2026-04-30T10:00:00+02:00", datetime(2026, 4, 30, 8, tzinfo=UTC)),
        ("2026-04-30 08:00", datetime(2026, 4, 30, 8, tzinfo=UTC)),  # no zone: UTC
    ],
)
def test_a_start_time_is_an_iso_time_or_an_age(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "15 minutes", "-2h", ""])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(Refused, match="not an ISO 8601 time"):
        parse_since(text, NOW)


@pytest.mark.parametrize("name", ["triage", "review-decisions", "notifier-pr-opened", "diagnosis-deadletters"])
def test_pagerpatch_s_own_durables_are_refused(name: str) -> None:
    with pytest.raises(Refused, match="pagerpatch's own durable consumers"):
        check_name(name)


@pytest.mark.parametrize("name", ["bad.name", "wild*", "a b", "x" * 129, ""])
def test_names_jetstream_would_not_take_are_refused(name: str) -> None:
    with pytest.raises(Refused, match="is not a durable name"):
        check_name(name)


def test_the_consumer_is_a_durable_pull_consumer_at_the_given_start() -> None:
    by_seq = consumer_config("warehouse", "pagerpatch.incident.>", since=None, seq=42)
    assert (by_seq.durable_name, by_seq.deliver_policy, by_seq.opt_start_seq) == (
        "warehouse", DeliverPolicy.BY_START_SEQUENCE, 42)  # fmt: skip
    assert by_seq.filter_subject == "pagerpatch.incident.>" and by_seq.ack_policy == AckPolicy.EXPLICIT
    assert by_seq.deliver_subject is None  # pull: the reader fetches at its own pace
    by_time = consumer_config("warehouse", "pagerpatch.>", since=NOW, seq=None)
    assert (by_time.deliver_policy, by_time.opt_start_time) == (DeliverPolicy.BY_START_TIME, NOW)


@pytest.mark.parametrize(("since", "seq"), [(None, None), ("2h", 5)])
def test_exactly_one_start_is_needed(since: str | None, seq: int | None) -> None:
    with pytest.raises(Refused, match="exactly one start"):
        checked_start("warehouse", "pagerpatch.>", since=since, seq=seq)


def test_a_sequence_starts_at_1() -> None:
    with pytest.raises(Refused, match="sequences start at 1"):
        checked_start("warehouse", "pagerpatch.>", since=None, seq=0)

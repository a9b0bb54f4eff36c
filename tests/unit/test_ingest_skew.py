"""Stale-timestamp rejections say which way the timestamp is off (a past one is not "from now")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pagerpatch.settings import IngestSettings
from services.ingest.providers import Context
from services.ingest.providers.common import check_skew

NOW = datetime(2024, 6, 3, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("offset_s", "wording"), [(-300, "300s in the past"), (420, "420s in the future")])
def test_stale_timestamp_reason_names_past_or_future(offset_s: int, wording: str) -> None:
    ctx = Context(now=NOW, settings=IngestSettings(), secrets=())
    rej = check_skew(NOW.timestamp() + offset_s, ctx, 120.0, "webhookTimestamp")
    assert rej is not None and rej.status == 401
    assert rej.reason == f"stale timestamp: webhookTimestamp is {wording} (window 120s); replay refused"


def test_timestamp_inside_the_window_is_accepted() -> None:
    ctx = Context(now=NOW, settings=IngestSettings(), secrets=())
    assert check_skew(NOW.timestamp() - 60, ctx, 120.0, "webhookTimestamp") is None

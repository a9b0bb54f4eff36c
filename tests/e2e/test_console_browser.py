"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright; no browser is downloaded):
the pages load, live events and incidents appear without a reload, and an approver's click publishes the decision.

Screenshots of every page are written to `$PAGERPATCH_TEST_ARTIFACTS/console/` when that is set, else under the
test's pytest tmp dir (`.../screenshots/`); the test prints where.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js import JetStreamContext

from pagerpatch.kernel import bus
from pagerpatch.settings import BusSettings
from schemas import subjects
from schemas.events import AlertReceived, AlertReceivedPayload
from tests.integration.test_console_app import DANA, VIEWER, console_app, console_settings, seed_incident, serving
from tests.integration.test_runtime import stream_events
from tests.support.streams import delete_streams, wait_for

CHROMIUM = shutil.which("chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` on PATH (Debian: apt install chromium; ./dev does it)"),
]


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    root = os.environ.get("PAGERPATCH_TEST_ARTIFACTS")
    folder = Path(root) / "console" if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"console screenshots in {folder}")
    return folder


@pytest.fixture
async def jsc(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await delete_streams(js)
    await bus.setup(js, BusSettings())
    yield js
    await nc.drain()


async def test_the_console_in_a_real_browser(nats_url: str, pool: asyncpg.Pool, jsc, tmp_path, artifacts) -> None:
    from playwright.async_api import async_playwright, expect

    seeded = await seed_incident(pool, title="KeyError in checkout (browser)")
    settings = console_settings(nats_url, tmp_path, token=VIEWER, approvers={"dana": DANA})
    shots: list[Path] = []
    async with console_app(settings, pool) as (app, deps), serving(app) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            async def shot(name: str) -> None:
                path = artifacts / f"{name}.png"
                await page.screenshot(path=str(path), full_page=True)
                shots.append(path)

            # Without the token: the sign-in form; with an approver's sign-in link: the incidents.
            assert (await page.goto(f"{base}/")).status == 401  # type: ignore[union-attr]
            await page.goto(f"{base}/?token={DANA}")
            assert page.url == f"{base}/"
            row = page.locator(f'tr[data-id="{seeded.incident_id}"]')
            await expect(row).to_contain_text("awaiting_approval")
            await expect(row).to_contain_text("revert-and-test")
            await expect(page.locator("#live-status")).to_contain_text("live: following")
            # A new incident shows up without a reload once an event says something happened.
            later = await seed_incident(pool, service="cart", team="web", title="TimeoutError in cart (browser)")
            await deps.bus.publish(_alert("nudge"))
            await expect(page.locator(f'tr[data-id="{later.incident_id}"]')).to_contain_text("cart", timeout=10_000)
            await shot("incidents")

            # Live events: an event published after the page opened appears in the table.
            await page.goto(f"{base}/events")
            await expect(page.locator("#live-status")).to_contain_text("live: following pagerpatch.>")
            marker = f"published after the page opened {uuid.uuid4().hex[:8]}"
            await deps.bus.publish(_alert(marker))
            await expect(page.locator("#event-rows")).to_contain_text(marker, timeout=10_000)
            await expect(page.locator("#event-rows tr").first).to_contain_text("alert.received")
            await shot("events")

            # One incident: the story, the rendered diff, and the approval click.
            await page.goto(f"{base}/incidents/{seeded.incident_id}")
            await expect(page.locator("#grounding")).to_contain_text("6 checked, 2 rejected")
            await expect(page.locator(".diff tr.add")).to_contain_text("return table.get(code)")
            await expect(page.locator("#llm-total")).to_contain_text("1,500 tokens")
            await shot("incident")
            await page.fill("#decision input[name=reason]", "checked in the browser")
            await page.click("#decision button.approve")
            await expect(page.locator("#notice")).to_contain_text("approve sent for")
            await shot("incident-approved")

            for name in ("health", "costs"):
                await page.goto(f"{base}/{name}")
                await expect(page.locator("h1")).to_have_text(name.capitalize())
                if name == "health":
                    await expect(page.locator("#consumers")).to_contain_text("review-decisions")
                await shot(name)
            assert await page.locator("#cost-chart rect").count() == 30  # a bar per day of the default period
            assert errors == []
        finally:
            await browser.close()

    async def decided() -> list[dict[str, object]]:
        return [json.loads(m) for m in await stream_events(jsc, subjects.APPROVAL_DECIDED)]

    [event] = await wait_for(decided, timeout=10)
    assert event["incident_id"] == str(seeded.incident_id)
    assert event["payload"] == {"decision": "approve", "decided_by": "dana", "reason": "checked in the browser",
                                "channel": "api", "decided_by_id": None}  # fmt: skip
    assert all(p.stat().st_size > 5_000 for p in shots) and len(shots) == 6


def _alert(title: str) -> AlertReceived:
    return AlertReceived.create(AlertReceivedPayload(source="generic", service="checkout", title=title), source="test")

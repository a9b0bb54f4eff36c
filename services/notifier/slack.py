"""Slack Web API adapter (slack_sdk's WebClient, pointed at `slack.api_url`).

slack_sdk's AsyncWebClient needs aiohttp, which pagerpatch does not install; the WebClient (urllib) is used
instead, each call in a worker thread, with none of its own retries: a retried `chat.postMessage` whose first
answer was lost (a dropped connection after Slack posted) would post twice, so a connection error or timeout is
`Transient` and the retry goes through the outbox, which looks the message up first. A rate limit (HTTP 429 with
`Retry-After`) and 5xx become `Transient` with Slack's delay, so the handoff waits in place (heartbeat, no
delivery used) instead of sleeping inside the client; a refusal (`channel_not_found`, `not_in_channel`,
`invalid_auth`, ...) is `Rejected`, terminal with Slack's reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from pagerpatch.kernel.errors import Transient
from pagerpatch.settings import SlackSettings
from services.notifier import domain_slack
from services.notifier.domain_slack import SlackMessage
from services.notifier.outbox import Rejected, Remote

log = logging.getLogger(__name__)
HISTORY_PAGES = 5  # the root lookup reads at most this many pages of 200 messages (newest first)


class SlackWebApi:
    """The few Web API methods the incident thread needs; every error is `Transient` or `Rejected`."""

    def __init__(self, settings: SlackSettings) -> None:
        token = settings.bot_token.get_secret_value() if settings.bot_token else None
        base = settings.api_url if settings.api_url.endswith("/") else settings.api_url + "/"
        self.client = WebClient(
            token=token,
            base_url=base,
            timeout=max(1, math.ceil(settings.timeout_s)),  # whole seconds (0 would mean a non-blocking socket)
            retry_handlers=[],  # not even for a dropped connection: see the module docstring
        )

    async def _call(self, method: str, fn: Callable[[], Any]) -> dict[str, Any]:
        try:
            response = await asyncio.to_thread(fn)
        except SlackApiError as exc:
            status = int(exc.response.status_code)
            error = str(exc.response.get("error") or "") if isinstance(exc.response.data, dict) else ""
            if domain_slack.classify(status, error) == "wait":
                wait = domain_slack.retry_after_s(dict(exc.response.headers or {}))
                raise Transient(
                    f"Slack {method}: {error or status}, retrying in {wait:g}s", retry_after_s=wait
                ) from exc
            raise Rejected(f"Slack {method}: {error or f'HTTP {status}'}") from exc
        except OSError as exc:  # urllib's connection errors and timeouts (TimeoutError is an OSError)
            raise Transient(f"Slack {method}: {type(exc).__name__}: {exc}", retry_after_s=2.0) from exc
        data = response.data
        return data if isinstance(data, dict) else {}

    async def post(
        self,
        channel: str,
        message: SlackMessage,
        *,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Remote:
        data = await self._call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                thread_ts=thread_ts,
                metadata=metadata,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        return Remote(id=str(data["ts"]), detail={"channel": str(data.get("channel") or channel)})

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        await self._call(
            "chat.update",
            lambda: self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks),
        )

    async def find_root(self, channel: str, incident_id: uuid.UUID) -> Remote | None:
        """The incident's root message in the channel's recent history, by its metadata (after a crash between
        chat.postMessage and the outbox record). Needs the channel's id (channels:history / groups:history)."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await self._lookup(
                "conversations.history",
                lambda c=cursor: self.client.conversations_history(  # type: ignore[misc]
                    channel=channel, include_all_metadata=True, limit=200, cursor=c
                ),
            )
            if page is None:
                return None
            for msg in page.get("messages") or []:
                if domain_slack.is_root_of(msg, incident_id):
                    return Remote(id=str(msg["ts"]), detail={"channel": channel})
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                return None
        return None

    async def find_reply(self, channel: str, thread_ts: str, incident_id: uuid.UUID, kind: str) -> Remote | None:
        """A reply of the thread posted for `kind` (found by its metadata)."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await self._lookup(
                "conversations.replies",
                lambda c=cursor: self.client.conversations_replies(  # type: ignore[misc]
                    channel=channel, ts=thread_ts, include_all_metadata=True, limit=200, cursor=c
                ),
            )
            if page is None:
                return None
            for msg in page.get("messages") or []:
                if domain_slack.is_reply_of(msg, incident_id, kind):
                    return Remote(id=str(msg["ts"]), detail={"channel": channel})
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                return None
        return None

    async def _lookup(self, method: str, fn: Callable[[], Any]) -> dict[str, Any] | None:
        """A lookup that cannot be made (a channel given by name, a missing history scope) finds nothing."""
        try:
            return await self._call(method, fn)
        except Rejected as exc:
            log.warning("%s: %s; posting without the lookup", method, exc.reason)
            return None

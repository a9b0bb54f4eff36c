"""Notifier service factory and entry point."""

from __future__ import annotations

import asyncio

import asyncpg

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.incidents import IncidentRepository, finish_handoff
from pagerpatch.kernel.runtime import Service, service_main
from pagerpatch.llm.config import review_policy
from pagerpatch.settings import Settings
from services.notifier.adapters import PgNotifications, PgOutbox, PgPullRequests, PgThreads
from services.notifier.handlers import service
from services.notifier.linear import LinearGraphql
from services.notifier.settings import make_forge, make_scm
from services.notifier.slack import SlackWebApi
from services.notifier.thread import IncidentThread, ThreadConfig, sweep_forever
from services.notifier.usecase import Notifier


def create_service() -> Service[Notifier]:
    return service


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> Notifier:
    """The configured Scm, the repository registry and the Postgres stores, built once the pool exists."""
    return Notifier(
        scm=make_scm(settings),
        repos=RepoRegistry(settings, pool),
        pull_requests=PgPullRequests(pool),
        notifications=PgNotifications(pool),
        thread=make_thread(settings, pool),
        forge=make_forge(settings, PgOutbox(pool)),
        incidents=IncidentRepository(pool),
    )


_sweeps: set[asyncio.Task[None]] = set()


def make_thread(settings: Settings, pool: asyncpg.Pool) -> IncidentThread | None:
    """The Slack thread / Linear issue use case when either is configured, with the approval sweep started."""
    slack = SlackWebApi(settings.slack) if settings.slack.enabled else None
    linear = LinearGraphql(settings.linear) if settings.linear.enabled else None
    if slack is None and linear is None:
        return None
    catalog = settings.service_catalog
    config = ThreadConfig(
        slack_channel=settings.slack.channel_for,
        linear_team=settings.linear.team_for,
        team_of_service=lambda service: entry.team if (entry := catalog.get(service)) else None,
        slack_approvers=frozenset(review_policy(settings).slack_approvers),
        approval_wait_s=settings.linear.approval_wait_s,
    )
    thread = IncidentThread(PgThreads(pool), PgOutbox(pool), PgNotifications(pool), slack, linear, config)
    if linear is not None:
        interval = min(60.0, max(1.0, settings.linear.approval_wait_s / 4))
        sweep = sweep_forever(thread, interval_s=interval, stopped=pool.is_closing)
        task = asyncio.get_running_loop().create_task(sweep)
        _sweeps.add(task)
        task.add_done_callback(_sweeps.discard)
    return thread


def main() -> None:
    service_main(create_service(), bootstrap, finish=finish_handoff)

"""The kernel's contracts with a stage: the event type a handler takes, the guards written once, the registry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from pagerpatch.git.repos import RepoRegistry
from pagerpatch.kernel.errors import Poison
from pagerpatch.kernel.guards import incident_id_of
from pagerpatch.kernel.runtime import Service, StageContext, subject_matches
from pagerpatch.settings import RepoConfig, Settings
from schemas.envelope import Event
from schemas.events import (
    AlertReceived,
    AlertReceivedPayload,
    DiagnosisReady,
    IncidentOpened,
    IncidentOpenedPayload,
)
from schemas.streams import ConsumerDef


async def _noop(event: Any, ctx: StageContext[Any]) -> Sequence[Event[Any]]:
    return []


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("pagerpatch.incident.opened", "pagerpatch.incident.opened", True),
        ("pagerpatch.incident.opened", "pagerpatch.diagnosis.ready", False),
        ("pagerpatch.*.opened", "pagerpatch.incident.opened", True),
        ("pagerpatch.*", "pagerpatch.incident.opened", False),
        ("pagerpatch.>", "pagerpatch.incident.opened", True),
        ("pagerpatch.>", "pagerpatch", False),
        ("pagerpatch.incident", "pagerpatch.incident.opened", False),
    ],
)
def test_subject_matching_follows_nats_wildcards(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


def test_a_handler_must_take_the_event_type_its_consumer_receives() -> None:
    service: Service[None] = Service("diagnosis")
    with pytest.raises(ValueError, match=re.escape("receives 'pagerpatch.incident.opened', not 'diagnosis.ready'")):
        service.handler("diagnosis", DiagnosisReady)(_noop)
    assert service.registrations == []
    service.handler("diagnosis", IncidentOpened)(_noop)
    assert [r.consumer.durable for r in service.registrations] == ["diagnosis"]


def test_a_handler_must_use_its_own_services_consumer() -> None:
    with pytest.raises(ValueError, match="belongs to 'diagnosis', not 'fixgen'"):
        Service("fixgen").handler("diagnosis", IncidentOpened)


def test_a_wildcard_consumer_accepts_any_event_under_it() -> None:
    consumer = ConsumerDef(durable="all", service="watch", subject="pagerpatch.>")
    service: Service[None] = Service("watch")
    service.handler(consumer, AlertReceived)(_noop)
    assert len(service.registrations) == 1


def _opened(incident: uuid.UUID | None) -> IncidentOpened:
    payload = IncidentOpenedPayload(fingerprint="fp", title="t", service="s", severity="P2")
    return IncidentOpened.create(payload, source="triage", incident_id=incident)


def test_the_incident_guard_returns_the_id_or_poisons_the_event() -> None:
    incident = uuid.uuid4()
    assert incident_id_of(_opened(incident)) == incident
    with pytest.raises(Poison, match=re.escape("incident.opened without incident_id")):
        incident_id_of(_opened(None))
    alert = AlertReceived.create(AlertReceivedPayload(source="generic", title="x", service="s"), source="ingest")
    with pytest.raises(Poison, match=re.escape("alert.received without incident_id")):
        incident_id_of(alert)


class _NoRegisteredRepos:
    """asyncpg's fetchval for a registry with no rows (the registry asks Postgres only for unknown names)."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.asked.append(args)
        return None


async def test_the_registry_resolves_configured_repos_and_poisons_unknown_ones(tmp_path: Any) -> None:
    shop = RepoConfig(name="shop", path=str(tmp_path), services=["checkout"])
    conn = _NoRegisteredRepos()
    registry = RepoRegistry(Settings(home=tmp_path, repos=[shop]), conn)
    assert await registry.require("shop") == shop
    assert conn.asked == []  # config answers first, without a query
    with pytest.raises(Poison, match="repository 'ghost' is not registered"):
        await registry.require("ghost")
    assert conn.asked == [("ghost",)]

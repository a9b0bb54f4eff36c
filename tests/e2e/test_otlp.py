"""OTLP export against a real OTLP/HTTP receiver: `pagerpatch up` with the exporter pointed at a receiver started
here (POST /v1/traces, protobuf bodies decoded with opentelemetry-proto); the demo alert becomes a pull request and
one trace spans ingest, triage, diagnosis, fixgen, review and notifier with the expected spans and parent links.
The same run scrapes every service's /metrics (`PAGERPATCH_METRICS__PORTS`) for the handoffs it just made.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pagerpatch.kernel import store
from pagerpatch.ops.demo_repo import build_demo_repo, demo_alert
from pagerpatch.ops.embedded import free_port
from schemas import streams
from tests.e2e.system import start, stop
from tests.support.http_server import ThreadedServer

pytestmark = pytest.mark.e2e

STAGES = ("ingest", "triage", "diagnosis", "fixgen", "review", "notifier")
# Each stage's span for its pipeline input: ingest publishes the alert, every other stage processes its input.
EXPECTED = {
    service: (f"pagerpatch-{service}", f"pagerpatch.{subject} {'publish' if service == 'ingest' else 'process'}")
    for service, subject in zip(
        STAGES,
        ("alert.received", "alert.received", "incident.opened", "diagnosis.ready", "fix.validated", "fix.approved"),
        strict=True,
    )
}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint: keeps every span of every ExportTraceServiceRequest it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.content_types: set[str] = set()
        self._lock = threading.Lock()
        self._http: ThreadedServer | None = None
        self.url = ""

    async def _traces(self, request: Request) -> Response:
        body = await request.body()
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)  # a body that is not the protobuf message fails here, and the test with it
        spans = []
        for rs in export.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    attrs = {a.key: _value(a.value) for a in s.attributes}
                    spans.append(
                        Span(service, s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.kind, attrs)
                    )
        with self._lock:
            self.spans.extend(spans)
            self.requests += 1
            self.content_types.add(request.headers.get("content-type", ""))
        reply = ExportTraceServiceResponse().SerializeToString()
        return Response(reply, media_type="application/x-protobuf")

    def start(self) -> OtlpReceiver:
        app = Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])
        self._http = ThreadedServer(app, "OTLP receiver")
        self.url = self._http.start() + "/v1/traces"
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()

    def snapshot(self) -> list[Span]:
        with self._lock:
            return list(self.spans)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    try:
        yield server
    finally:
        server.stop()


async def _incident_state(url: str, incident: uuid.UUID) -> str | None:
    async with store.connection(url) as conn:
        state = await conn.fetchval("SELECT state FROM incidents WHERE id = $1", incident)
    return None if state is None else str(state)


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def test_one_trace_spans_the_six_services_on_a_real_otlp_receiver(receiver: OtlpReceiver) -> None:
    # Outside pytest's tmp root (see tests/conftest.py): the embedded Postgres runs as another user.
    home = Path(tempfile.mkdtemp(prefix="pagerpatch-otlp-"))
    ports = {name: free_port() for name in STAGES if name != "ingest"}
    env = {
        "PAGERPATCH_TELEMETRY__EXPORTER": "otlp",
        "PAGERPATCH_TELEMETRY__OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 200 ms instead of 5 s
        "PAGERPATCH_METRICS__PORTS": "{" + ", ".join(f'"{k}": {v}' for k, v in ports.items()) + "}",
    }
    system = start(home, {"bus": {"retry_base_s": 0.5}}, env)
    try:
        demo = build_demo_repo(home / "repos" / "shopcart")
        system.cli("repos", "add", "demo-shopcart", "--path", str(demo.path), "--service", "checkout")
        resp = system.post_alert(demo_alert(demo), "otlp-1")
        assert resp.status_code == 202, resp.text
        alert_id = resp.json()["event_id"]
        incident = uuid.uuid5(uuid.UUID(alert_id), "triage:incident")
        deadline, state = time.monotonic() + 180, None
        while time.monotonic() < deadline and state not in ("pr_opened", "failed", "rejected"):
            time.sleep(0.5)
            state = asyncio.run(_incident_state(system.database_url, incident))
        assert state == "pr_opened", f"incident ended in {state}; log tail:\n{system.log()[-6000:]}"

        def trace_of_alert() -> list[Span]:
            spans = receiver.snapshot()
            roots = [s for s in spans if s.attributes.get("messaging.message.id") == alert_id]
            if not roots:
                return []
            trace = [s for s in spans if s.trace_id == roots[0].trace_id]
            # every stage's span for its pipeline input, not only some span of every service: the notifier also
            # processes incident.opened and the others for the Slack thread, long before fix.approved
            return trace if {(s.service, s.name) for s in trace} >= set(EXPECTED.values()) else []

        deadline, trace = time.monotonic() + 30, []
        while time.monotonic() < deadline and not (trace := trace_of_alert()):
            time.sleep(0.3)
        seen = sorted({(s.service, s.name) for s in receiver.snapshot()})
        assert trace, f"no trace over the six services; spans received: {seen}"
        assert receiver.content_types == {"application/x-protobuf"}

        by_id = {s.span_id: s for s in trace}
        names = {(s.service, s.name) for s in trace}
        # ingest publishes the alert; each stage processes its input (FastStream's consumer span) and the kernel's
        # handoff runs inside it; the notifier's pull request is the end of the line.
        for expected in EXPECTED.values():
            assert expected in names, sorted(names)
        # Parent links: exactly one root (ingest's publish of the alert); every other span's parent arrived too.
        roots = [s for s in trace if not s.parent_id]
        assert [(r.service, r.name) for r in roots] == [("pagerpatch-ingest", "pagerpatch.alert.received publish")]
        assert all(s.parent_id in by_id for s in trace if s.parent_id), "a span's parent never arrived"

        def chain(span: Span) -> list[str]:
            out = []
            while span.parent_id:
                span = by_id[span.parent_id]
                out.append(span.service)
            return out

        # Each stage's processing descends from the stage before it: the context travels in the message headers.
        process = {
            s.service: s for s in trace if (s.service, s.name) == EXPECTED.get(s.service.removeprefix("pagerpatch-"))
        }
        order = [f"pagerpatch-{n}" for n in STAGES]
        for i, service in enumerate(order[1:], start=1):
            ancestors = chain(process[service])
            assert order[i - 1] in ancestors, (service, ancestors)
        assert process["pagerpatch-notifier"].attributes.get("pagerpatch.incident_id") == str(incident)

        # Every service also counted its handoffs on its own /metrics endpoint.
        for name, port in ports.items():
            samples = _scrape(port)
            handled = sum(
                v for (n, labels), v in samples.items()
                if n == "pagerpatch_handoffs_total" and ("outcome", "handled") in labels
                and ("service", name) in labels
            )  # fmt: skip
            assert handled >= 1, name
            lag = [
                (dict(labels)["consumer"], v)
                for (n, labels), v in samples.items()
                if n == "pagerpatch_consumer_pending"
            ]
            assert lag and {c for c, _ in lag} <= {c.durable for c in streams.consumers_of(name)}, name
    finally:
        alive = stop(system)
        shutil.rmtree(home, ignore_errors=True)
    assert alive == [], f"processes left behind after Ctrl-C: {alive}"

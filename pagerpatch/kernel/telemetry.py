"""OpenTelemetry set-up: a tracer provider per process with a configurable exporter."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from pagerpatch.settings import TelemetrySettings


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (local debugging and tests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            parent = span.parent
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_id": f"{parent.span_id:016x}" if parent else None,
                        "service": span.resource.attributes.get("service.name"),
                        "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
                        "start": span.start_time,
                        "end": span.end_time,
                    }
                )
            )
        with self._lock, self.path.open("a") as fh:
            fh.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS


def setup_tracing(service: str, settings: TelemetrySettings, state_dir: Path) -> TracerProvider:
    """Install and return this process's tracer provider (exporter: none, console, otlp or file)."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"pagerpatch-{service}"}))
    if settings.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint) if settings.otlp_endpoint else OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    elif settings.exporter == "file":
        path = Path(settings.file_path) if settings.file_path else state_dir / "traces.jsonl"
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    trace.set_tracer_provider(provider)
    return provider

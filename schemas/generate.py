"""Generate the JSON Schema of every event and the AsyncAPI document: `python -m schemas.generate`.

The generated files are checked in; a test fails when they drift from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas import streams, subjects
from schemas.events import EVENT_TYPES

HERE = Path(__file__).parent
JSONSCHEMA_DIR = HERE / "jsonschema"
ASYNCAPI_FILE = HERE / "asyncapi.json"


def event_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for cls in EVENT_TYPES:
        schema = cls.model_json_schema(mode="serialization")
        schema["$id"] = f"https://pagerpatch.dev/schemas/{cls.TYPE}.v{cls.VERSION}.json"
        schema["title"] = cls.TYPE
        schema["x-subject"] = subjects.for_type(cls.TYPE)
        schema["x-schema-version"] = cls.VERSION
        out[f"{cls.TYPE}.json"] = schema
    return out


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in EVENT_TYPES:
        name = cls.TYPE.replace(".", "_")
        messages[name] = {"name": cls.TYPE, "contentType": "application/json",
                          "payload": {"$ref": f"jsonschema/{cls.TYPE}.json"}}  # fmt: skip
        channels[name] = {
            "address": subjects.for_type(cls.TYPE),
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        consumers = [c.service for c in streams.CONSUMERS if c.subject == subjects.for_type(cls.TYPE)]
        operations[f"receive_{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"consumed by: {', '.join(consumers) or 'no pagerpatch service (external subscribers)'}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "pagerpatch events",
            "version": "1",
            "description": "Every pipeline event, on NATS JetStream stream "
            f"{streams.EVENTS_STREAM}. Nats-Msg-Id is the event_id.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    files = {JSONSCHEMA_DIR / name: render(schema) for name, schema in event_schemas().items()}
    files[ASYNCAPI_FILE] = render(asyncapi())
    return files


def main() -> int:
    JSONSCHEMA_DIR.mkdir(exist_ok=True)
    for path, text in expected_files().items():
        path.write_text(text)
    print(f"wrote {len(expected_files())} files under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

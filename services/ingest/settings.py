"""Ingest's view of the settings tree: where it listens and how much it accepts."""

from __future__ import annotations

from dataclasses import dataclass

from pagerpatch.settings import Settings


@dataclass(frozen=True)
class IngestConfig:
    host: str
    port: int
    max_body_bytes: int

    @classmethod
    def from_settings(cls, s: Settings) -> IngestConfig:
        return cls(host=s.ingest_host, port=s.ingest_port, max_body_bytes=s.ingest_max_body_bytes)

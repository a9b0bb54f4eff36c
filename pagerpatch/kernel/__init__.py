"""The handoff runtime and its parts: checkpoints, dead letters, errors, breakers, bus, store, telemetry."""

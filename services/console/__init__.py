"""The console: a read-only web UI on the event streams and the store, for people (docs/console.md)."""

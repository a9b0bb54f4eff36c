"""Test support code: fake servers and config helpers."""

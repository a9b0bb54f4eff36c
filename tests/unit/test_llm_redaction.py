"""Secrets are masked before text reaches a model, a log line or a notification."""

from __future__ import annotations

import io
import logging

import pytest

from pagerpatch.kernel import redaction
from pagerpatch.kernel.redaction import RedactingFilter, redact, redact_data

CASES = [
    ("aws access key", "key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("aws secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG"),
    ("github pat", "token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "ghp_0123456789abcdef"),
    ("github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG"),
    ("slack bot token", "SLACK=xoxb-1234567890-0987654321-abcdefghijkl", "xoxb-1234567890"),
    ("slack webhook", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX", "hooks.slack.com/services/T000"),
    ("anthropic key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03-abcdef"),
    ("bearer header", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdefghijk", "eyJhbGciOiJIUzI1NiJ9abc"),
    ("password assignment", "DB_PASSWORD=hunter2-very-secret", "hunter2-very-secret"),
    ("json secret", '{"client_secret": "abcd1234efgh"}', "abcd1234efgh"),
    ("url credentials", "postgres://app:s3cr3tpw@db.internal:5432/shop", "s3cr3tpw"),
    (
        "private key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA",
    ),
    ("stripe", "sk_live_51H8abcdefghijklmnop", "sk_live_51H8abcdefghijklmnop"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "dozjgNry"),
]


@pytest.mark.parametrize(("kind", "text", "secret"), CASES, ids=[c[0] for c in CASES])
def test_builtin_patterns_mask_the_secret(kind: str, text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "[REDACTED" in out


@pytest.mark.parametrize(
    "text",
    [
        "KeyError: 'SUMMER25' in pricing.apply_coupon (pricing.py:42)",
        "commit 3f2a9c1 by alice: pricing: simplify coupon lookup",
        "GET /api/v1/orders?page=2 took 1532ms",
        "the password field is empty",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_only_the_password_of_a_url_is_masked() -> None:
    assert redact("redis://cache:pw12345@redis:6379/0") == "redis://cache:[REDACTED]@redis:6379/0"


def test_configured_patterns_add_to_the_builtin_ones() -> None:
    try:
        redaction.configure({"internal": r"itk_[a-z0-9]{12}"})
        assert redact("use itk_abcdef123456 now") == "use [REDACTED:internal] now"
        assert "AKIAIOSFODNN7EXAMPLE" not in redact("AKIAIOSFODNN7EXAMPLE")
    finally:
        redaction.configure({})
    assert redact("itk_abcdef123456") == "itk_abcdef123456"


def test_structures_are_redacted_leaf_by_leaf() -> None:
    data = {"messages": [{"content": [{"text": "pw: password=abc12345"}]}], "n": 3}
    out = redact_data(data)
    assert "abc12345" not in str(out) and out["n"] == 3


def test_log_records_are_redacted_including_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s", "postgres://u:topsecret1@h/db")
        try:
            raise RuntimeError("token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB rejected")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "topsecret1" not in out and "ghp_0123456789" not in out
    assert "postgres://u:[REDACTED]@h/db" in out and "RuntimeError" in out

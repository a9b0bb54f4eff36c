"""Captured local variables per stack frame (`frame_vars`): the generic format's field and Sentry's `vars` (pure).

The Sentry fixture is the sample Python event Sentry ships (sentry-python 2.31.0), so the reprs that SDK sends
are the ones decoded here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pagerpatch.settings import IngestSettings
from schemas.events import AlertReceived, AlertReceivedPayload, FrameVars
from services.ingest.providers import PROVIDERS, Context, Delivery, Rejection, WebhookRequest
from services.ingest.providers.generic import (
    MAX_FRAMES,
    MAX_TOTAL_CHARS,
    MAX_VALUE_CHARS,
    MAX_VARS,
    CapturedFrame,
    bounded_frame_vars,
)
from services.ingest.providers.sentry import _DROP, _json_value, frame_vars
from tests.support.ingest import fixture_json, generic_headers, sentry_headers

NOW = datetime(2024, 6, 3, 10, 0, 0, tzinfo=UTC)
SECRET = "s3cret"


def normalize(provider: str, headers: dict[str, str], body: bytes, **settings: Any) -> Delivery | Rejection:
    c = Context(now=NOW, settings=IngestSettings(**settings), secrets=(SECRET.encode(),))
    req = WebhookRequest(headers={k.lower(): v for k, v in headers.items()}, body=body, content_type="application/json")
    p = PROVIDERS[provider]
    assert p.verify(req, c) is None
    return p.normalize(req, c)


def alert_of(out: Delivery | Rejection) -> AlertReceivedPayload:
    assert isinstance(out, Delivery), out
    [event] = out.events
    assert isinstance(event, AlertReceived)
    return event.payload


def sentry_alert(event: dict[str, Any]) -> AlertReceivedPayload:
    body = json.dumps({"action": "triggered", "data": {"event": event, "triggered_rule": "errors"}}).encode()
    return alert_of(normalize("sentry", sentry_headers(SECRET, body, "event_alert"), body))


def generic_alert(fields: dict[str, Any], **settings: Any) -> Delivery | Rejection:
    body = json.dumps({"title": "KeyError in checkout", "service": "checkout", **fields}).encode()
    return normalize("generic", generic_headers(SECRET, body), body, **settings)


# ---------------------------------------------------------------- Sentry


def test_the_sentry_sample_python_event_gives_the_failing_frames_values() -> None:
    p = sentry_alert(fixture_json("sentry_event_python_modern.json"))
    # `<module>` holds only interpreter globals (`__file__`, `__builtins__`, ...): nothing of it is kept.
    assert p.frame_vars == [
        FrameVars(file="/Users/user/test/main.py", function="main", line=26,
                  vars={"dict_var": {"key1": "value1", "key2": "value2", "key3": "value3"}, "int_var": 1,
                        "list_var": [1, 2, 3], "str_var": "Hello, world!"}),
    ]  # fmt: skip
    assert p.stack_trace is not None and p.stack_trace.endswith("Exception: This is an example Python exception")


@pytest.mark.parametrize(
    ("sent", "value"),
    [
        ("'SAVE10'", "SAVE10"),
        ('"it\'s"', "it's"),
        ("42", 42),
        ("-3.5", -3.5),
        ("None", None),
        ("True", True),
        (7, 7),  # a number sent as JSON (older SDKs) is kept
        (None, None),
        (["1", "'a'"], [1, "a"]),
        ({"code": "'SAVE10'", "qty": "2"}, {"code": "SAVE10", "qty": 2}),
        ({"'code'": "'SAVE10'"}, {"code": "SAVE10"}),  # raven printed the keys too
        ({}, {}),
    ],
)
def test_python_reprs_are_read_back_as_the_values_they_print(sent: Any, value: Any) -> None:
    assert _json_value(sent, python=True) == value


@pytest.mark.parametrize(
    "sent",
    [
        "<shopcart.models.Cart object at 0x7f3a2c1b9d90>",  # an object: nothing to replay
        "[Filtered]",  # scrubbed by Sentry
        "'aaaaaaaaaa...",  # cut short by the SDK
        "b'raw'",  # bytes are not JSON
        "(1, 2)",  # a container printed as text is some object's repr
        "{1, 2}",
        "1e999",  # not finite: dropped by the plain-JSON check later, not here
        "nan",
        "datetime.datetime(2013, 8, 13, 3, 8, 24)",
        ["1", "<object>"],  # one bad item spoils the list
        {"k": "[Filtered]"},
        "'" + "x" * MAX_VALUE_CHARS + "'",
    ],
)
def test_what_is_no_plain_value_is_dropped(sent: Any) -> None:
    value = _json_value(sent, python=True)
    assert value is _DROP or value == float("inf")


def test_other_platforms_keep_strings_as_they_are() -> None:
    assert _json_value("'quoted'", python=False) == "'quoted'"
    assert _json_value({"code": "SAVE10"}, python=False) == {"code": "SAVE10"}
    assert _json_value("[Filtered]", python=False) is _DROP


def frame(function: str, vars: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {"abs_path": f"/srv/app/{function}.py", "lineno": 10, "function": function, "vars": vars, **extra}


def event(*frames: dict[str, Any], platform: str = "python", **extra: Any) -> dict[str, Any]:
    values = [{"type": "KeyError", "value": "'SAVE10'", "stacktrace": {"frames": list(frames)}}]
    return {"title": "KeyError: 'SAVE10'", "platform": platform, "exception": {"values": values}, **extra}


def test_frames_come_innermost_last_and_frames_without_usable_vars_are_skipped() -> None:
    got = frame_vars(event(
        frame("checkout", {"cart_id": "7"}),
        frame("render", None),  # the SDK captured nothing (vars: null, as in Sentry's JavaScript examples)
        frame("total", {"self": "<Cart object at 0x1>"}),  # nothing plain left
        frame("find_coupon", {"code": "'SAVE10'", "__name__": "'shop'"}),
    ))  # fmt: skip
    assert [(f.function, f.vars) for f in got] == [("checkout", {"cart_id": 7}), ("find_coupon", {"code": "SAVE10"})]
    assert got[-1].file == "/srv/app/find_coupon.py" and got[-1].line == 10


def test_library_frames_are_left_out_when_the_sdk_marked_the_applications() -> None:
    got = frame_vars(event(
        frame("handler", {"request_id": "'r-1'"}, in_app=True),
        frame("get_item", {"key": "'SAVE10'"}, in_app=False),
    ))  # fmt: skip
    assert [f.function for f in got] == ["handler"]
    everything_library = frame_vars(event(frame("a", {"x": "1"}, in_app=False), frame("b", {"y": "2"})))
    assert [f.function for f in everything_library] == ["a", "b"]


def test_the_raised_exception_of_a_chain_gives_the_frames() -> None:
    cause = {"type": "ValueError", "stacktrace": {"frames": [frame("parse", {"text": "'x'"})]}}
    chained = event(frame("find_coupon", {"code": "'SAVE10'"}))
    chained["exception"]["values"].insert(0, cause)
    assert [f.function for f in frame_vars(chained)] == ["find_coupon"]


def test_variables_sentry_annotated_or_that_look_like_credentials_are_dropped() -> None:
    meta = {"exception": {"values": {"0": {"stacktrace": {"frames": {"0": {"vars": {"items": {"": {"len": 40}}}}}}}}}}
    got = frame_vars(event(
        frame("checkout", {"items": ["1", "2"], "password": "'hunter2hunter2'",
                           "dsn": "'https://user:pa55word@sentry.example.com/1'", "code": "'SAVE10'"}),
        _meta=meta,
    ))  # fmt: skip
    assert [f.vars for f in got] == [{"code": "SAVE10"}]


def test_an_event_without_exception_or_vars_has_no_frame_vars() -> None:
    assert frame_vars({"title": "boom"}) == []
    assert frame_vars(event(frame("f", None))) == []
    payload = sentry_alert(event(frame("f", None)))
    assert payload.frame_vars == [] and payload.stack_trace is not None


def test_a_javascript_event_keeps_its_strings() -> None:
    got = frame_vars(event(frame("applyCoupon", {"code": "SAVE10", "qty": 2}), platform="javascript"))
    assert got[0].vars == {"code": "SAVE10", "qty": 2}


# ---------------------------------------------------------------- limits (both providers)


def captured(function: str, **vars: Any) -> CapturedFrame:
    return CapturedFrame(file=f"app/{function}.py", function=function, line=3, vars=vars)


def test_at_most_the_innermost_frames_and_the_first_variables_are_kept() -> None:
    frames = [captured(f"f{i}", x=i) for i in range(MAX_FRAMES + 5)]
    got = bounded_frame_vars(frames)
    assert len(got) == MAX_FRAMES and got[0].function == "f5" and got[-1].function == f"f{MAX_FRAMES + 4}"
    many = bounded_frame_vars([captured("g", **{f"v{i}": i for i in range(MAX_VARS + 10)})])
    assert list(many[0].vars) == [f"v{i}" for i in range(MAX_VARS)]


def test_oversized_non_plain_and_odd_names_are_dropped() -> None:
    frames = [CapturedFrame("app/m.py", "f", 0, {"big": "x" * MAX_VALUE_CHARS, "nan": float("nan"), "n" * 201: 1,
                                                 "__file__": "m.py", "ok": [1, {"a": None}]})]  # fmt: skip
    [only] = bounded_frame_vars(frames)
    assert only.vars == {"ok": [1, {"a": None}]} and only.line is None
    assert bounded_frame_vars([CapturedFrame("", "f", 1, {"x": 1}), CapturedFrame("a.py", "", 1, {"x": 1})]) == []
    assert bounded_frame_vars([CapturedFrame("a.py", "f" * 501, 1, {"x": 1})]) == []


def test_when_the_budget_runs_out_the_outermost_frames_go_first() -> None:
    value = "y" * (MAX_VALUE_CHARS - 20)
    frames = [captured(f"f{i}", v=value) for i in range(MAX_TOTAL_CHARS // MAX_VALUE_CHARS + 5)]
    got = bounded_frame_vars(frames)
    assert got[-1].function == frames[-1].function and got[0].function != "f0"
    assert sum(len(json.dumps(f.vars)) for f in got) <= MAX_TOTAL_CHARS


# ---------------------------------------------------------------- the generic format


def test_the_generic_format_accepts_frame_vars() -> None:
    sent = [
        {"file": "shopcart/api.py", "function": "checkout", "line": 50, "vars": {"cart_id": 7}, "module": "api"},
        {"file": "shopcart/pricing.py", "function": "find_coupon", "line": 64, "vars": {"code": "SAVE10"}},
    ]
    p = alert_of(generic_alert({"frame_vars": sent}))
    assert p.frame_vars == [
        FrameVars(file="shopcart/api.py", function="checkout", line=50, vars={"cart_id": 7}),
        FrameVars(file="shopcart/pricing.py", function="find_coupon", line=64, vars={"code": "SAVE10"}),
    ]
    assert alert_of(generic_alert({})).frame_vars == []


def test_generic_strings_are_taken_as_they_are_and_limits_apply() -> None:
    sent = [{"file": "a.py", "function": "f", "vars": {"code": "'quoted'", "blob": "z" * MAX_VALUE_CHARS}}]
    [got] = alert_of(generic_alert({"frame_vars": sent})).frame_vars
    assert got.vars == {"code": "'quoted'"} and got.line is None


@pytest.mark.parametrize(
    ("frames", "where"),
    [
        ([{"file": "a.py", "vars": {}}], "frame_vars.0.function"),
        ([{"function": "f"}], "frame_vars.0.file"),
        ([{"file": "a.py", "function": "f", "vars": [1, 2]}], "frame_vars.0.vars"),
        ([{"file": "a.py", "function": "f", "line": 0}], "frame_vars.0.line"),
        ({"file": "a.py"}, "frame_vars"),
    ],
)
def test_a_malformed_frame_is_refused_naming_the_field(frames: Any, where: str) -> None:
    out = generic_alert({"frame_vars": frames})
    assert isinstance(out, Rejection) and out.status == 400 and where in out.reason


def test_frame_vars_can_be_mapped_from_another_shape() -> None:
    body = {"alert": {"name": "KeyError", "app": "checkout"},
            "error": {"frames": [{"file": "a.py", "function": "f", "line": 2, "vars": {"x": 1}}]}}  # fmt: skip
    raw = json.dumps(body).encode()
    mapping = {"title": "/alert/name", "service": "alert.app", "frame_vars": "/error/frames"}
    out = normalize("generic", generic_headers(SECRET, raw), raw, generic_mapping=mapping)
    assert alert_of(out).frame_vars == [FrameVars(file="a.py", function="f", line=2, vars={"x": 1})]

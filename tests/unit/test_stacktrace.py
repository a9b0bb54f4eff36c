"""Stack-trace parsing and frame-to-repository mapping: table-driven, no I/O."""

from __future__ import annotations

import pytest

from pagerpatch.traces import identity, symbols
from pagerpatch.traces.stacktrace import (
    PARSERS,
    Frame,
    GoParser,
    JavaParser,
    JavaScriptParser,
    ParsedTrace,
    PythonParser,
    RubyParser,
    TraceParser,
    is_foreign_path,
    map_frames_to_repo,
    normalize_frame_path,
    parse_trace,
)

PY_SIMPLE = """\
Traceback (most recent call last):
  File "/srv/app/shopcart/api.py", line 50, in checkout
    priced = quote(cart, coupon_code, today=today)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/shopcart/pricing.py", line 64, in find_coupon
    coupon = COUPONS[normalize_code(code)]
             ~~~~~~~^^^^^^^^^^^^^^^^^^^^^^
KeyError: 'SUMMER24'
"""

PY_DURING_HANDLING = """\
Traceback (most recent call last):
  File "/app/orders/db.py", line 12, in fetch
    return conn.execute(sql)
ConnectionError: server closed the connection

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/orders/service.py", line 30, in get_order
    row = fetch(order_id)
  File "/app/orders/db.py", line 14, in fetch
    raise RuntimeError("retry budget exhausted")
RuntimeError: retry budget exhausted
"""

PY_DIRECT_CAUSE = """\
Traceback (most recent call last):
  File "/srv/app/shopcart/pricing.py", line 71, in tax_for
    rate = TAX_RATES_BP[region]
KeyError: 'ZZ'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/usr/lib/python3.11/concurrent/futures/thread.py", line 58, in run
    result = self.fn(*self.args, **self.kwargs)
  File "/srv/app/shopcart/api.py", line 35, in quote
    priced = price_cart(cart)
  File "/srv/app/shopcart/pricing.py", line 73, in tax_for
    raise PricingError(f"we do not ship to region {region!r}") from exc
shopcart.pricing.PricingError: we do not ship to region 'ZZ'
"""

PY_LOG_PREFIXED = """\
2024-06-03T12:00:01Z app[web.1]: Traceback (most recent call last):
2024-06-03T12:00:01Z app[web.1]:   File "/app/main.py", line 8, in <module>
2024-06-03T12:00:01Z app[web.1]:     run()
2024-06-03T12:00:01Z app[web.1]:   File "/app/worker.py", line 3, in run
2024-06-03T12:00:01Z app[web.1]:     return 1 / 0
2024-06-03T12:00:01Z app[web.1]: ZeroDivisionError: division by zero
"""

PY_NO_MESSAGE_MULTILINE = """\
some log line before
Traceback (most recent call last):
  File "C:\\srv\\app\\jobs\\nightly.py", line 5, in <lambda>
  File "jobs/nightly.py", line 9
ValueError: bad rows:
  row 3: missing sku
  row 9: negative price

trailing noise
"""

JS_NODE = """\
/srv/app/src/pricing.js:42
    return coupon.percent * subtotal;
                  ^

TypeError: Cannot read properties of undefined (reading 'percent')
    at applyCoupon (/srv/app/src/pricing.js:42:19)
    at Array.map (<anonymous>)
    at Object.checkout [as handle] (/srv/app/src/api.js:10:3)
    at async Promise.all (index 0)
    at /srv/app/src/server.js:5:9
    at Layer.handle (/srv/app/node_modules/express/lib/router/layer.js:95:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)

Node.js v20.11.0
"""

JS_ESM_CODE = """\
Uncaught RangeError [ERR_OUT_OF_RANGE]: The value of "offset" is out of range.
    at new Invoice (file:///srv/app/lib/invoice.mjs:7:11)
    at file:///srv/app/lib/main.mjs:3:1
"""

JAVA_CAUSED_BY = """\
Exception in thread "main" java.lang.IllegalStateException: checkout failed
\tat com.shop.api.CheckoutController.checkout(CheckoutController.java:41)
\tat com.shop.Main.main(Main.java:12)
Caused by: java.lang.ArithmeticException: / by zero
\tat com.shop.pricing.Pricing.unitPrice(Pricing.java:88)
\tat com.shop.pricing.Pricing.lambda$apply$0(Pricing.java:60)
\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1596)
\tat com.shop.api.CheckoutController.checkout(CheckoutController.java:39)
\t... 1 more
"""

JAVA_SIMPLE = """\
2024-06-03 14:22:01 ERROR [http-nio-8080-exec-3] o.a.c.c.C.[dispatcherServlet]: request failed
java.lang.NullPointerException: Cannot invoke "String.length()" because "code" is null
\tat app//com.shop.pricing.Coupons.normalize(Coupons.java:17)
\tat com.shop.pricing.Coupons.<init>(Coupons.java:9)
\tat jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tSuppressed: java.io.IOException: close failed
\t\tat com.shop.io.Res.close(Res.java:3)
"""

GO_PANIC = """\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x47e0b6]

goroutine 7 [running]:
main.(*Cart).Total(0x0)
\t/srv/app/cart.go:42 +0x16
main.handleCheckout({0x5a7e40, 0xc0000a4000}, 0xc0000b2000)
\t/srv/app/handlers/checkout.go:19 +0x3c
net/http.HandlerFunc.ServeHTTP(0xc000012345?, {0x5a7e40?, 0xc0000a4000?}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x5cb

goroutine 1 [IO wait]:
main.main()
\t/srv/app/main.go:10 +0x25
exit status 2
"""

GO_CUSTOM = """\
panic: order 17 has no lines [recovered]
\tpanic: order 17 has no lines

goroutine 1 [running]:
github.com/shop/orders.(*Service).Place.func1()
\t/build/orders/service.go:88 +0x1c5
"""


RUBY_UNCAUGHT = """\
/app/app/models/order.rb:12:in `total': undefined method `price' for nil:NilClass (NoMethodError)
\tfrom /app/app/controllers/orders_controller.rb:5:in `block in show'
\tfrom /usr/lib/ruby/gems/3.2.0/gems/actionpack-7.1.3/lib/action_controller/metal.rb:227:in `dispatch'
"""

RUBY_34 = """\
/app/app/models/order.rb:12:in 'Order#total': undefined method 'price' for nil (NoMethodError)
\tfrom /app/app/controllers/orders_controller.rb:5:in 'OrdersController#show'
"""

RUBY_RAILS_LOG = """\
Completed 500 Internal Server Error in 12ms
ActiveRecord::RecordNotFound (Couldn't find Order with 'id'=17):
  app/controllers/orders_controller.rb:5:in `show'
"""

JAVA_FROM_SENTRY = """\
NullPointerException: Cannot invoke "Order.total()" because "order" is null
\tat com.acme.orders.Pricing.quote(Pricing.java:88)
\tat com.acme.orders.Api.checkout(Api.java:41)
"""


def _f(file: str, line: int | None, function: str | None) -> tuple[str, int | None, str | None]:
    return (file, line, function)


@pytest.mark.parametrize(
    ("text", "language", "exc_type", "message", "frames"),
    [
        pytest.param(
            PY_SIMPLE,
            "python",
            "KeyError",
            "'SUMMER24'",
            [
                _f("/srv/app/shopcart/api.py", 50, "checkout"),
                _f("/srv/app/shopcart/pricing.py", 64, "find_coupon"),
            ],
            id="python-simple-with-carets",
        ),
        pytest.param(
            PY_DURING_HANDLING,
            "python",
            "RuntimeError",
            "retry budget exhausted",
            [_f("/app/orders/service.py", 30, "get_order"), _f("/app/orders/db.py", 14, "fetch")],
            id="python-during-handling-takes-last",
        ),
        pytest.param(
            PY_DIRECT_CAUSE,
            "python",
            "shopcart.pricing.PricingError",
            "we do not ship to region 'ZZ'",
            [
                _f("/usr/lib/python3.11/concurrent/futures/thread.py", 58, "run"),
                _f("/srv/app/shopcart/api.py", 35, "quote"),
                _f("/srv/app/shopcart/pricing.py", 73, "tax_for"),
            ],
            id="python-direct-cause-takes-last",
        ),
        pytest.param(
            PY_LOG_PREFIXED,
            "python",
            "ZeroDivisionError",
            "division by zero",
            [_f("/app/main.py", 8, "<module>"), _f("/app/worker.py", 3, "run")],
            id="python-log-prefixed",
        ),
        pytest.param(
            PY_NO_MESSAGE_MULTILINE,
            "python",
            "ValueError",
            "bad rows:\n  row 3: missing sku\n  row 9: negative price",
            [_f("C:\\srv\\app\\jobs\\nightly.py", 5, "<lambda>"), _f("jobs/nightly.py", 9, None)],
            id="python-multiline-message-no-function",
        ),
        pytest.param(
            JS_NODE,
            "javascript",
            "TypeError",
            "Cannot read properties of undefined (reading 'percent')",
            [
                _f("node:internal/process/task_queues", 95, "process.processTicksAndRejections"),
                _f("/srv/app/node_modules/express/lib/router/layer.js", 95, "Layer.handle"),
                _f("/srv/app/src/server.js", 5, None),
                _f("/srv/app/src/api.js", 10, "Object.checkout [as handle]"),
                _f("/srv/app/src/pricing.js", 42, "applyCoupon"),
            ],
            id="javascript-node",
        ),
        pytest.param(
            JS_ESM_CODE,
            "javascript",
            "RangeError",
            'The value of "offset" is out of range.',
            [_f("file:///srv/app/lib/main.mjs", 3, None), _f("file:///srv/app/lib/invoice.mjs", 7, "new Invoice")],
            id="javascript-esm-error-code",
        ),
        pytest.param(
            JAVA_CAUSED_BY,
            "java",
            "java.lang.ArithmeticException",
            "/ by zero",
            [
                _f("com/shop/Main.java", 12, "Main.main"),
                _f("com/shop/api/CheckoutController.java", 39, "CheckoutController.checkout"),
                _f("java/util/ArrayList.java", 1596, "ArrayList.forEach"),
                _f("com/shop/pricing/Pricing.java", 60, "Pricing.lambda$apply$0"),
                _f("com/shop/pricing/Pricing.java", 88, "Pricing.unitPrice"),
            ],
            id="java-caused-by-restores-elided-frames",
        ),
        pytest.param(
            JAVA_SIMPLE,
            "java",
            "java.lang.NullPointerException",
            'Cannot invoke "String.length()" because "code" is null',
            [
                _f("", None, "NativeMethodAccessorImpl.invoke0"),
                _f("com/shop/pricing/Coupons.java", 9, "Coupons.<init>"),
                _f("com/shop/pricing/Coupons.java", 17, "Coupons.normalize"),
            ],
            id="java-log-noise-module-prefix-suppressed",
        ),
        pytest.param(
            GO_PANIC,
            "go",
            "runtime error",
            "invalid memory address or nil pointer dereference",
            [
                _f("/usr/local/go/src/net/http/server.go", 3086, "net/http.(*Server).Serve"),
                _f("/usr/local/go/src/net/http/server.go", 2136, "net/http.HandlerFunc.ServeHTTP"),
                _f("/srv/app/handlers/checkout.go", 19, "main.handleCheckout"),
                _f("/srv/app/cart.go", 42, "main.(*Cart).Total"),
            ],
            id="go-nil-pointer-first-goroutine-only",
        ),
        pytest.param(
            GO_CUSTOM,
            "go",
            "panic",
            "order 17 has no lines",
            [_f("/build/orders/service.go", 88, "github.com/shop/orders.(*Service).Place.func1")],
            id="go-recovered-custom-panic",
        ),
        pytest.param(
            RUBY_UNCAUGHT,
            "ruby",
            "NoMethodError",
            "undefined method `price' for nil:NilClass",
            [
                _f("/usr/lib/ruby/gems/3.2.0/gems/actionpack-7.1.3/lib/action_controller/metal.rb", 227, "dispatch"),
                _f("/app/app/controllers/orders_controller.rb", 5, "block in show"),
                _f("/app/app/models/order.rb", 12, "total"),
            ],
            id="ruby-uncaught",
        ),
        pytest.param(
            RUBY_34,
            "ruby",
            "NoMethodError",
            "undefined method 'price' for nil",
            [
                _f("/app/app/controllers/orders_controller.rb", 5, "OrdersController#show"),
                _f("/app/app/models/order.rb", 12, "Order#total"),
            ],
            id="ruby-3.4-quotes-and-class-labels",
        ),
        pytest.param(
            RUBY_RAILS_LOG,
            "ruby",
            "ActiveRecord::RecordNotFound",
            "Couldn't find Order with 'id'=17",
            [_f("app/controllers/orders_controller.rb", 5, "show")],
            id="ruby-rails-log",
        ),
        pytest.param(
            JAVA_FROM_SENTRY,
            "java",
            "NullPointerException",
            'Cannot invoke "Order.total()" because "order" is null',
            [
                _f("com/acme/orders/Api.java", 41, "Api.checkout"),
                _f("com/acme/orders/Pricing.java", 88, "Pricing.quote"),
            ],
            id="java-bare-exception-type",
        ),
    ],
)
def test_parse_trace(
    text: str, language: str, exc_type: str, message: str, frames: list[tuple[str, int | None, str | None]]
) -> None:
    parsed = parse_trace(text)
    assert parsed is not None
    assert (parsed.language, parsed.exception_type, parsed.message) == (language, exc_type, message)
    assert [(f.file, f.line, f.function) for f in parsed.frames] == frames
    assert parsed.innermost == parsed.frames[-1]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t",
        "hello world",
        "Error: something went wrong",
        "Traceback (most recent call last):\n",
        '{"level": "error", "msg": "upstream timeout", "at": "12:00:01"}',
        "goroutine 1 [running]:\n",
        "at the end of the day: 12:30",
        'Exception in thread "main" java.lang.Error: no frames here',
    ],
    ids=[
        "empty",
        "blank",
        "prose",
        "js-no-frames",
        "py-header-only",
        "json-log",
        "go-no-frames",
        "at-prose",
        "java-no-frames",
    ],
)
def test_garbage_is_not_a_trace(text: str) -> None:
    assert parse_trace(text) is None


def test_python_source_context_is_kept_and_carets_are_not() -> None:
    parsed = parse_trace(PY_SIMPLE)
    assert parsed is not None
    assert [f.context for f in parsed.frames] == [
        "priced = quote(cart, coupon_code, today=today)",
        "coupon = COUPONS[normalize_code(code)]",
    ]


def test_java_frames_carry_the_qualified_class_and_js_frames_the_column() -> None:
    java = parse_trace(JAVA_CAUSED_BY)
    js = parse_trace(JS_NODE)
    assert java is not None and js is not None
    assert java.frames[-1].context == "com.shop.pricing.Pricing"
    assert js.frames[-1].column == 19


@pytest.mark.parametrize(
    ("parser", "sample", "others"),
    [
        (PythonParser(), PY_SIMPLE, [JAVA_SIMPLE, GO_PANIC, JS_NODE]),
        (JavaParser(), JAVA_CAUSED_BY, [PY_SIMPLE, GO_PANIC, JS_NODE]),
        (GoParser(), GO_PANIC, [PY_SIMPLE, JAVA_SIMPLE, JS_NODE]),
        (JavaScriptParser(), JS_NODE, [PY_SIMPLE, JAVA_SIMPLE, GO_PANIC, RUBY_UNCAUGHT]),
        (RubyParser(), RUBY_UNCAUGHT, [PY_SIMPLE, JAVA_SIMPLE, GO_PANIC, JS_NODE]),
    ],
    ids=["python", "java", "go", "javascript", "ruby"],
)
def test_each_parser_detects_only_its_language(parser: TraceParser, sample: str, others: list[str]) -> None:
    assert parser.detect(sample)
    assert not any(parser.detect(other) for other in others)
    parsed = parser.parse(sample)
    assert isinstance(parsed, ParsedTrace) and parsed.language == parser.language


def test_every_language_has_a_registered_parser() -> None:
    assert {p.language for p in PARSERS} == {"python", "javascript", "java", "go", "ruby"}


def test_native_js_frames_are_skipped_however_they_are_printed() -> None:
    node = parse_trace(
        "TypeError: x\n    at f (/app/a.js:1:2)\n    at Array.map (<anonymous>)\n    at g (/app/b.js:3:4)"
    )
    sentry = parse_trace("TypeError: x\n    at f (/app/a.js:1:0)\n    at Array.map (<anonymous>:0:0)\n"
                         "    at g (/app/b.js:3:0)")  # fmt: skip
    assert node is not None and sentry is not None
    assert [f.function for f in node.frames] == [f.function for f in sentry.frames] == ["g", "f"]


REPO_FILES = {
    "shopcart/api.py",
    "shopcart/pricing.py",
    "shopcart/__init__.py",
    "tests/test_pricing.py",
    "src/pricing.js",
    "src/server.js",
    "lib/invoice.mjs",
    "src/main/java/com/shop/pricing/Pricing.java",
    "cart.go",
    "handlers/checkout.go",
    "a/util.py",
    "b/util.py",
    "util.py",
}


@pytest.mark.parametrize(
    ("frame_file", "expected"),
    [
        ("/srv/app/shopcart/pricing.py", "shopcart/pricing.py"),
        ("/home/deploy/releases/20240603/shopcart/api.py", "shopcart/api.py"),
        ("shopcart/pricing.py", "shopcart/pricing.py"),
        ("./shopcart/pricing.py", "shopcart/pricing.py"),
        ("C:\\srv\\app\\shopcart\\pricing.py", "shopcart/pricing.py"),
        ("/srv/app/src/pricing.js", "src/pricing.js"),
        ("file:///srv/app/lib/invoice.mjs", "lib/invoice.mjs"),
        ("webpack:///./src/server.js", "src/server.js"),
        ("com/shop/pricing/Pricing.java", "src/main/java/com/shop/pricing/Pricing.java"),
        ("/srv/app/handlers/checkout.go", "handlers/checkout.go"),
        ("/srv/app/cart.go", "cart.go"),
        ("/opt/app/a/util.py", "a/util.py"),
        ("util.py", "util.py"),
        ("/opt/app/c/util.py", None),  # a/util.py, b/util.py and util.py fit equally: ambiguous
        ("/usr/lib/python3.11/json/__init__.py", None),
        ("/srv/app/.venv/lib/python3.11/site-packages/shopcart/api.py", None),
        ("/usr/local/lib/python3.12/dist-packages/requests/api.py", None),
        ("/srv/app/node_modules/express/lib/router/layer.js", None),
        ("node:internal/process/task_queues", None),
        ("<frozen importlib._bootstrap>", None),
        ("<string>", None),
        ("/usr/local/go/src/net/http/server.go", None),
        ("/srv/app/not_in_repo.py", None),
        ("", None),
    ],
)
def test_map_frames_to_repo(frame_file: str, expected: str | None) -> None:
    mapped = map_frames_to_repo([Frame(frame_file, 1, "f")], REPO_FILES)
    assert [rel for _, rel in mapped] == ([expected] if expected else [])


def test_mapping_keeps_call_order_and_the_frames() -> None:
    parsed = parse_trace(PY_DIRECT_CAUSE)
    assert parsed is not None
    mapped = map_frames_to_repo(parsed.frames, REPO_FILES)
    assert [(rel, frame.line, frame.function) for frame, rel in mapped] == [
        ("shopcart/api.py", 35, "quote"),
        ("shopcart/pricing.py", 73, "tax_for"),
    ]


@pytest.mark.parametrize(
    ("path", "normalized", "foreign"),
    [
        ("/srv/app/shopcart/pricing.py", "srv/app/shopcart/pricing.py", False),
        ("C:\\Python311\\Lib\\json\\decoder.py", "Python311/Lib/json/decoder.py", True),
        ("file:///srv/app/x.mjs", "srv/app/x.mjs", False),
        ("https://cdn.example.com/app.js?v=3", "cdn.example.com/app.js", False),
        ("internal/modules/cjs/loader.js", "internal/modules/cjs/loader.js", True),
        ("/root/go/pkg/mod/github.com/x/y@v1.2.0/z.go", "root/go/pkg/mod/github.com/x/y@v1.2.0/z.go", True),
    ],
)
def test_normalize_and_foreign_paths(path: str, normalized: str, foreign: bool) -> None:
    assert normalize_frame_path(path) == normalized
    assert is_foreign_path(path) is foreign


# ---------------------------------------------------------------- where functions are defined

FUNCTION_FILES = {
    "py/app.py": "import x\n\nclass Cart:\n    async def total(self):\n        return checkout(1)\n",
    "js/app.js": (
        "export function applyCoupon(c) {}\n"
        "const quote = async (cart) => cart;\n"
        "class Api {\n  static checkout(cart) {\n    return quote(cart);\n  }\n}\n"
    ),
    "java/com/shop/Pricing.java": (
        "package com.shop;\npublic class Pricing {\n"
        "    public Pricing() {}\n"
        "    private static int unitPrice(Item item) throws IOException {\n"
        "        return apply(item);\n    }\n}\n"
    ),
    "go/cart.go": (
        "package main\n\nfunc (c *Cart) Total() int {\n\treturn helper(c)\n}\n\nfunc Generic[T any](t T) {}\n"
    ),
}


@pytest.mark.parametrize(
    ("file", "function", "exists"),
    [
        ("py/app.py", "total", True),
        ("py/app.py", "Cart", True),
        ("py/app.py", "Cart.total", True),
        ("py/app.py", "checkout", False),  # called, never defined
        ("py/app.py", "<module>", False),
        ("js/app.js", "applyCoupon", True),
        ("js/app.js", "quote", True),
        ("js/app.js", "Function.checkout [as handle]", True),
        ("js/app.js", "new Api", True),
        ("js/app.js", "missing", False),
        ("java/com/shop/Pricing.java", "Pricing.unitPrice", True),
        ("java/com/shop/Pricing.java", "Pricing.<init>", True),
        ("java/com/shop/Pricing.java", "Pricing.lambda$unitPrice$0", True),
        ("java/com/shop/Pricing.java", "Pricing.apply", False),
        ("go/cart.go", "main.(*Cart).Total", True),
        ("go/cart.go", "main.(*Cart).Total.func1", True),
        ("go/cart.go", "main.Generic[...]", True),
        ("go/cart.go", "main.helper", False),
        ("no/such/file.py", "total", False),  # no definition in an empty text
    ],
)
def test_defines(file: str, function: str, exists: bool) -> None:
    assert symbols.defines(FUNCTION_FILES.get(file, ""), file, function) is exists


# ---------------------------------------------------------------- identity: one error, whatever printed it


@pytest.mark.parametrize(
    ("qualified", "bare"),
    [
        ("httpx.ReadTimeout", "ReadTimeout"),
        ("psycopg2.OperationalError", "OperationalError"),
        ("java.lang.NullPointerException", "NullPointerException"),
        ("ActiveRecord::RecordNotFound", "RecordNotFound"),
        ("KeyError", "KeyError"),
        ("runtime error", "runtime error"),  # Go's panic kinds are not class paths
    ],
)
def test_exception_class_is_the_bare_name(qualified: str, bare: str) -> None:
    assert identity.exception_class(qualified) == bare


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(
            'Traceback (most recent call last):\n  File "/srv/app/pay/client.py", line 9, in charge\n'
            "httpx.ReadTimeout: timed out\n",
            'Traceback (most recent call last):\n  File "/srv/app/pay/client.py", line 11, in charge\n'
            "ReadTimeout: timed out\n",
            id="python-qualified-and-bare",
        ),
        pytest.param(
            JAVA_SIMPLE.replace("java.lang.NullPointerException", "NullPointerException"),
            JAVA_SIMPLE,
            id="java-qualified-and-bare",
        ),
        pytest.param(
            JAVA_CAUSED_BY, JAVA_CAUSED_BY.replace("lambda$apply$0", "lambda$apply$3"), id="java-lambda-numbering"
        ),
        pytest.param(
            RUBY_34,
            RUBY_34.replace("'Order#total'", "`total'").replace("'OrdersController#show'", "`block in show'"),
            id="ruby-labels",
        ),
        pytest.param(
            "TypeError: x\n    at Object.checkout [as handle] (/app/api.js:10:3)\n    at Array.map (<anonymous>)\n",
            "TypeError: x\n    at Object.checkout (/app/api.js:10:0)\n    at Array.map (<anonymous>:0:0)\n",
            id="node-native-frame-and-alias",
        ),
    ],
)
def test_one_error_has_one_signature_whatever_printed_it(one: str, other: str) -> None:
    a, b = parse_trace(one), parse_trace(other)
    assert a is not None and b is not None
    assert identity.signature(a) == identity.signature(b)


def test_signature_keeps_different_errors_apart() -> None:
    a, b = parse_trace(PY_SIMPLE), parse_trace(PY_SIMPLE.replace("KeyError", "ValueError"))
    assert a is not None and b is not None
    assert identity.signature(a) != identity.signature(b)
    assert identity.signature(a) == ("KeyError", ("api.py:checkout", "pricing.py:find_coupon"))

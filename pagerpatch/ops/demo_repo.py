"""The demo scenario: a git history of the shipped checkout service in which one ordinary-looking commit breaks it.

The scenario's files (pagerpatch/ops/demo_scenario/, package data read with importlib.resources, so an installed
package finds them from any directory) hold the final *good* code. Earlier states and the regression are derived
from it by exact text edits (each must match exactly once, so a drifted example fails loudly), committed with
fixed authors and dates so every sha is the same on every machine. The alert's stack trace is real: it
is captured by running the broken code path in a subprocess, then given a production deploy prefix. The same
helpers (`Edit`, `commit_files`, `hermetic_env`, `to_deploy_paths`) build the `pagerpatch eval fixes` histories.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pagerpatch.git.workspace import git

DEMO_SCENARIO = "demo_scenario"  # the folder of package data, next to this module
DEPLOY_PREFIX = "/srv/app/"
DEMO_COUPON = "SUMMER24"
TRIGGER_CODE = (
    "from shopcart.api import checkout\n"
    "from shopcart.catalog import sample_cart\n"
    f"checkout(sample_cart(), {DEMO_COUPON!r})\n"
)
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", ".git"}


class DemoBuildError(Exception):
    """The demo repository could not be built as specified (drifted example files, no regression...)."""


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str


ALICE = Person("Alice Moreau", "alice.moreau@shopcart.example")
BOB = Person("Bob Tanaka", "bob.tanaka@shopcart.example")
CAROL = Person("Carol Diaz", "carol.diaz@shopcart.example")


@dataclass(frozen=True, slots=True)
class DemoCommit:
    sha: str
    subject: str
    author: str


@dataclass(frozen=True, slots=True)
class DemoTrigger:
    """How the regression shows itself: the command that ran and the traceback it printed."""

    code: str
    traceback: str  # as production reports it: paths under DEPLOY_PREFIX
    raw_traceback: str  # as captured, with the repository's own absolute paths
    exception_type: str
    message: str


@dataclass(frozen=True, slots=True)
class DemoRepo:
    """A built demo repository and the facts a test or demo needs about it."""

    path: Path
    bad_commit: str
    good_commit: str  # the bad commit's parent: tests pass here
    head: str
    commits: tuple[DemoCommit, ...]  # oldest first
    trace: DemoTrigger

    def trigger(self) -> DemoTrigger:
        """The real traceback the regression throws at HEAD."""
        return self.trace


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace `old` (present exactly once) by `new` in `file` (the demo's edits go back from the good version)."""

    file: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class _Step:
    message: str
    author: Person
    date: str
    files: tuple[str, ...]  # files this commit writes, at the content the edits below give them
    edits: tuple[Edit, ...] = ()


# Going back in time from the good version: what each file looked like before its feature landed.
_API_BEFORE_SHIPPING = (
    Edit("shopcart/api.py", "from dataclasses import dataclass, replace\n", "from dataclasses import dataclass\n"),
    Edit("shopcart/api.py", "from shopcart.shipping import shipping_fee\n", ""),
    Edit(
        "shopcart/api.py",
        '    """Full price of `cart`, shipping included, without reserving anything."""\n'
        "    priced = price_cart(cart, coupon_code=coupon_code, today=today or date.today())\n"
        "    shipping = shipping_fee(cart, priced.subtotal_cents - priced.discount_cents)\n"
        "    return replace(priced, shipping_cents=shipping)\n",
        '    """Full price of `cart`, without reserving anything."""\n'
        "    return price_cart(cart, coupon_code=coupon_code, today=today or date.today())\n",
    ),
)
_INVENTORY_BEFORE_LOW_STOCK = (
    Edit(
        "shopcart/inventory.py",
        "# A SKU at or below this many units shows up in the buyers' low-stock report.\nLOW_STOCK_THRESHOLD = 10\n\n\n",
        "\n",
    ),
    Edit(
        "shopcart/inventory.py",
        "\n    def low_stock(self, threshold: int = LOW_STOCK_THRESHOLD) -> list[str]:\n"
        '        """SKUs at or below `threshold` units, for the buyers\' daily report."""\n'
        "        return sorted(sku for sku, units in self._stock.items() if units <= threshold)\n",
        "",
    ),
    Edit(
        "tests/test_inventory.py",
        "\n\ndef test_low_stock_report_lists_skus_at_or_below_threshold() -> None:\n"
        '    inventory = Inventory({"MUG-001": 120, "LAMP-330": 6, "BOOK-207": 10})\n'
        '    assert inventory.low_stock() == ["BOOK-207", "LAMP-330"]\n'
        "    assert inventory.low_stock(threshold=5) == []\n",
        "",
    ),
)
# The regression: indexing the table directly turns an unknown code (a client error) into a KeyError (a 500).
REGRESSION = Edit(
    "shopcart/pricing.py",
    "    coupon = COUPONS.get(normalize_code(code))\n    if coupon is None or not coupon.is_active(today):\n",
    "    coupon = COUPONS[normalize_code(code)]\n    if not coupon.is_active(today):\n",
)

_LATER_FILES = ("README.md", "shopcart/shipping.py", "tests/test_shipping.py")
_STEPS_AFTER_IMPORT = (
    _Step(
        "checkout: charge shipping, free above $50 after coupons\n\n"
        "Flat rate plus a per-kilogram surcharge for parcels over 1 kg. The free-shipping\n"
        "threshold is checked after the coupon discount, as marketing asked.\n",
        BOB,
        "2024-05-14T16:40:00+02:00",
        ("shopcart/shipping.py", "tests/test_shipping.py", "shopcart/api.py"),
    ),
    _Step(
        "docs: README with coupon rules and error codes\n",
        ALICE,
        "2024-05-21T10:05:00+02:00",
        ("README.md",),
    ),
    _Step(
        "pricing: simplify coupon lookup\n\n"
        "Index the coupon table directly instead of get() + None check; is_active()\n"
        "already guards the expiry case.\n",
        CAROL,
        "2024-06-03T14:22:00+02:00",
        ("shopcart/pricing.py",),
        (REGRESSION,),
    ),
    _Step(
        "inventory: report low-stock SKUs for the buyers\n",
        BOB,
        "2024-06-05T09:30:00+02:00",
        ("shopcart/inventory.py", "tests/test_inventory.py"),
    ),
)
_IMPORT_DATE = "2024-05-06T09:12:00+02:00"
_IMPORT_MESSAGE = "Initial import of the checkout service\n"
_BAD_INDEX = 3  # position of the regression in the full history (initial import = 0)


def demo_source() -> Path:
    """Where the shipped scenario's files are: package data, found the same way in a checkout and an install."""
    source = resources.files("pagerpatch.ops") / DEMO_SCENARIO
    if not isinstance(source, Path):  # a zipped install: the scenario is walked as a real directory
        raise DemoBuildError(f"the demo scenario is not a directory on disk ({source}); install pagerpatch unzipped")
    return source


def build_demo_repo(dest: Path, source: Path | None = None) -> DemoRepo:
    """Create the demo git repository at `dest` (absent or empty) and capture the regression's traceback."""
    dest = dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        raise DemoBuildError(f"{dest} is not empty")
    good = _read_tree(source or demo_source())
    dest.mkdir(parents=True, exist_ok=True)
    git(dest, "init", "--quiet", "--initial-branch=main", env=hermetic_env(ALICE, _IMPORT_DATE))

    history: list[DemoCommit] = []
    initial_files = tuple(sorted(f for f in good if f not in _LATER_FILES))
    initial = _Step(
        _IMPORT_MESSAGE, ALICE, _IMPORT_DATE, initial_files, (*_API_BEFORE_SHIPPING, *_INVENTORY_BEFORE_LOW_STOCK)
    )
    for step in (initial, *_STEPS_AFTER_IMPORT):
        history.append(_commit(dest, good, step))

    tree = {f: (dest / f).read_text(encoding="utf-8") for f in good}
    expected = dict(good, **{REGRESSION.file: _apply(good, (REGRESSION,))[REGRESSION.file]})
    if tree != expected:
        raise DemoBuildError("the built history does not end at the example files plus the regression")

    bad = history[_BAD_INDEX]
    raw = _capture_traceback(dest)
    traceback = to_deploy_paths(raw, dest)
    last = traceback.strip().splitlines()[-1]
    exc_type, _, message = last.partition(": ")
    return DemoRepo(
        path=dest,
        bad_commit=bad.sha,
        good_commit=history[_BAD_INDEX - 1].sha,
        head=history[-1].sha,
        commits=tuple(history),
        trace=DemoTrigger(TRIGGER_CODE, traceback, raw, exc_type, message),
    )


def demo_alert(repo: DemoRepo, run: str | None = None) -> dict[str, Any]:
    """The generic-webhook alert production would send for the regression.

    With `run`, the alert carries its own fingerprint: triage treats it as a new problem instead of a repeat of an
    earlier demo's incident (still open, its pull request waiting), so every `pagerpatch demo` reaches its own PR.
    """
    trigger = repo.trigger()
    alert: dict[str, Any] = {
        "title": f"{trigger.exception_type} in checkout: POST /checkout returning 500",
        "service": "checkout",
        "severity": "critical",
        "description": (
            "Error rate on POST /checkout above 5% for 5 minutes (currently 7.8%). "
            f"Unhandled {trigger.exception_type} {trigger.message} in shopcart.pricing. "
            "Customers applying coupon codes cannot complete their orders."
        ),
        "stack_trace": trigger.traceback,
        "labels": {
            "env": "production",
            "team": "payments",
            "region": "us-west-2",
            "endpoint": "POST /checkout",
            "deploy": repo.head[:7],
        },
        "commit": repo.head,
    }
    if run:
        alert["fingerprint"] = f"pagerpatch-demo-{run}"
        alert["labels"]["demo_run"] = run
    return alert


# ---------------------------------------------------------------- internals


def _read_tree(source: Path) -> dict[str, str]:
    if not (source / "shopcart").is_dir():
        raise DemoBuildError(f"demo service sources not found at {source}")
    files: dict[str, str] = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and not _SKIP_PARTS.intersection(rel.parts) and path.suffix != ".pyc":
            files[rel.as_posix()] = path.read_text(encoding="utf-8")
    return files


def _apply(good: dict[str, str], edits: tuple[Edit, ...]) -> dict[str, str]:
    """Contents of the files `edits` touch, each edit matching exactly once."""
    out: dict[str, str] = {}
    for edit in edits:
        text = out.get(edit.file, good[edit.file])
        if text.count(edit.old) != 1:
            raise DemoBuildError(f"{edit.file}: expected exactly one {edit.old[:60]!r}; has the example drifted?")
        out[edit.file] = text.replace(edit.old, edit.new)
    return out


def _commit(repo: Path, good: dict[str, str], step: _Step) -> DemoCommit:
    edited = _apply(good, step.edits)
    files = {rel: edited.get(rel, good[rel]) for rel in step.files}
    sha = commit_files(repo, files, step.message, step.author, step.date)
    return DemoCommit(sha=sha, subject=step.message.splitlines()[0], author=step.author.name)


def _capture_traceback(repo: Path) -> str:
    """Run the checkout path with the demo coupon at HEAD and return the traceback it really prints."""
    proc = subprocess.run(
        [sys.executable, "-B", "-c", TRIGGER_CODE],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    start = proc.stderr.find("Traceback (most recent call last):")
    if proc.returncode == 0 or start < 0:
        raise DemoBuildError(f"the regression did not reproduce (exit {proc.returncode}): {proc.stderr[-500:]}")
    return proc.stderr[start:]


# ---------------------------------------------------------------- shared with the `eval fixes` scenario histories


def commit_files(repo: Path, files: Mapping[str, str | None], message: str, author: Person, date: str) -> str:
    """Write `files` (None deletes one) and commit exactly them as `author` at `date`; the new commit's sha."""
    for rel, content in files.items():
        target = repo / rel
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        # newline="" keeps "\n" on every platform so blobs, and therefore shas, never vary.
        with target.open("w", encoding="utf-8", newline="") as handle:
            handle.write(content)
    env = hermetic_env(author, date)
    git(repo, "add", "--all", "--", *files, env=env)
    git(repo, "commit", "--quiet", "--no-verify", "--message", message, env=env)
    return git(repo, "rev-parse", "HEAD", env=env).strip()


def hermetic_env(author: Person, date: str) -> dict[str, str]:
    """Identity, dates and no user/system config: the same shas on every machine."""
    return {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
        "GIT_COMMITTER_DATE": date,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def to_deploy_paths(traceback: str, repo: Path) -> str:
    """Rewrite the checkout's absolute paths to the production deploy prefix (/srv/app/...)."""
    out = traceback
    for prefix in {str(repo) + os.sep, str(repo.resolve()) + os.sep}:
        out = out.replace(f'File "{prefix}', f'File "{DEPLOY_PREFIX}')
    return out

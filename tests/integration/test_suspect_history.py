"""Diagnosis of regressions that blame alone misses: the bad commit changed the code *around* the failing line.

Each scenario is a small real git history in tmp_path; the traceback is real, captured by running the broken
code at HEAD, and `usecase.find_suspect` must name the commit whose revert fixes it. The last tests run the use
case on the git adapters, and the service itself on a real nats-server and Postgres.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from pagerpatch.git import workspace
from pagerpatch.git.worktrees import Workspaces
from pagerpatch.kernel import bus
from pagerpatch.settings import RepoConfig
from pagerpatch.traces import symbols
from schemas import subjects
from schemas.events import IncidentOpened, IncidentOpenedPayload, Severity
from services.diagnosis.adapters import GitCheckouts, GitHistory
from services.diagnosis.app import bootstrap, create_service
from services.diagnosis.domain.region import Region, enclosing_region
from services.diagnosis.domain.report import SuspectReport
from services.diagnosis.memory import MemoryAudit, MemoryRepos
from services.diagnosis.usecase import Diagnosis, find_suspect
from tests.integration.test_runtime import make_settings, stream_events, wait_done
from tests.support.git import Repo
from tests.support.stages import running_stage
from tests.support.streams import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

TRIGGER = "from ledger.money import average; average([])"

GUARDED_AVERAGE = "def average(values):\n    if not values:\n        return 0.0\n    return sum(values) / len(values)\n"
TIDY_AVERAGE = "def average(values):\n    return sum(values) / len(values)\n"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.init(tmp_path / "ledger repo")


def defines(path: Path, file: str, function: str) -> bool:
    return symbols.defines(workspace.read_file(path, file), file, function)


def assert_everything_named_exists(path: Path, report: SuspectReport) -> None:
    files = workspace.list_files(path)
    assert report.evidence
    for item in report.evidence:
        assert item.file in files
        assert item.commit is not None and workspace.commit_exists(path, item.commit)
        if item.function:
            assert defines(path, item.file, item.function)
    for change in report.regions:
        assert workspace.commit_exists(path, change.commit.sha)
        if change.region.name:
            assert defines(path, change.frame.file, change.region.name)


def test_a_removed_guard_above_the_failing_line_is_found_and_its_revert_fixes_it(repo: Repo) -> None:
    initial = repo.commit(
        {"ledger/__init__.py": "", "ledger/money.py": GUARDED_AVERAGE, "README.md": "ledger\n"}, "initial import"
    )
    bad = repo.commit({"ledger/money.py": TIDY_AVERAGE}, "money: tidy average", who="Eve")
    repo.commit({"README.md": "ledger\n\nAverages and totals.\n"}, "docs: describe the ledger")

    trace = repo.trace(TRIGGER)
    assert trace.exception_type == "ZeroDivisionError"
    assert trace.frames[-1].context == "return sum(values) / len(values)"
    report = find_suspect(GitHistory(repo.path), trace)

    # Blame alone points at the initial import: the failing line itself never changed.
    assert report.blamed[0].blame.sha == initial and report.blamed[0].line == 2
    assert report.suspect is not None and report.suspect.sha == bad
    assert report.suspect.subject == "money: tidy average"
    assert report.suspect_region is not None
    assert report.suspect_region.region == Region(1, 2, "function", "average")

    first = report.evidence[0]
    assert (first.file, first.line, first.function, first.commit) == ("ledger/money.py", 2, "average", bad)
    assert "changed the enclosing function `average` (lines 1–2)" in first.note
    assert "the suspect commit" in first.note and initial[:7] in first.note
    assert_everything_named_exists(repo.path, report)
    assert bad[:7] in report.root_cause and "money: tidy average" in report.root_cause
    assert "average()" in report.root_cause and "ledger/money.py:2" in report.root_cause
    # Lower than a suspect that changed the failing line itself (0.85), higher than a root-commit guess.
    assert report.confidence == 0.75

    payload = report.to_diagnosis("ledger")
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == bad

    reverted = workspace.revert(repo.path, bad)
    assert reverted.ok and reverted.commit is not None
    fixed = repo.run("from ledger.money import average; assert average([]) == 0.0")
    assert fixed.returncode == 0, fixed.stderr


def test_a_commit_that_changed_the_failing_line_is_still_found_by_blame(repo: Repo) -> None:
    repo.commit(
        {
            "ledger/__init__.py": "",
            "ledger/money.py": "def average(values):\n    return sum(values) / len(values) if values else 0.0\n",
            "README.md": "ledger\n",
        },
        "initial import",
    )
    bad = repo.commit({"ledger/money.py": TIDY_AVERAGE}, "money: inline the mean", who="Eve")
    repo.commit({"README.md": "ledger\n\nAverages and totals.\n"}, "docs: describe the ledger")

    report = find_suspect(GitHistory(repo.path), repo.trace(TRIGGER))

    assert report.suspect is not None and report.suspect.sha == bad
    assert report.suspect_region is None  # blame found it: the commit changed the failing line
    assert report.blamed[0].blame.sha == bad
    first = report.evidence[0]
    assert first.commit == bad and "line last changed by" in first.note and "the suspect commit" in first.note
    assert "enclosing" not in first.note
    assert "That line was last changed by commit" in report.root_cause
    assert report.confidence == 0.85
    assert_everything_named_exists(repo.path, report)
    assert workspace.revert(repo.path, bad).ok


def test_a_later_change_to_another_function_of_the_same_file_is_not_chosen(repo: Repo) -> None:
    total = "def total(values):\n    return sum(values)\n"
    spread = "def spread(values):\n    return max(values) - min(values)\n"
    repo.commit(
        {"ledger/__init__.py": "", "ledger/money.py": f"{total}\n\n{GUARDED_AVERAGE}\n\n{spread}"}, "initial import"
    )
    bad = repo.commit({"ledger/money.py": f"{total}\n\n{TIDY_AVERAGE}\n\n{spread}"}, "money: tidy average", who="Eve")
    # Later, someone edits both neighbours of `average` (and shifts it down by two lines).
    later_total = (
        'def total(values):\n    """Sum of `values`, rounded to cents."""\n    return round(sum(values), 2)\n\n'
    )
    later_spread = "def spread(values):\n    return (max(values) - min(values)) if values else 0\n"
    later = repo.commit(
        {"ledger/money.py": f"{later_total}\n\n{TIDY_AVERAGE}\n\n{later_spread}"}, "money: round totals, safe spread"
    )

    trace = repo.trace(TRIGGER)
    assert trace.frames[-1].line == 8
    report = find_suspect(GitHistory(repo.path), trace)

    assert report.suspect is not None and report.suspect.sha == bad != later
    assert report.suspect_region is not None
    assert report.suspect_region.region == Region(7, 8, "function", "average")
    assert "changed the enclosing function `average` (lines 7–8)" in report.evidence[0].note
    assert later not in {e.commit for e in report.evidence}
    assert_everything_named_exists(repo.path, report)
    assert workspace.revert(repo.path, bad).ok


def test_a_method_of_a_class_is_its_own_enclosing_function(repo: Repo) -> None:
    def cart(init_body: str, guard: bool) -> str:
        guard_lines = "        if not prices:\n            return 0.0\n" if guard else ""
        return (
            "class Cart:\n"
            "    def __init__(self, prices):\n"
            f"        {init_body}\n"
            "\n"
            "    @property\n"
            "    def mean_price(self):\n"
            "        prices = self.prices\n"
            f"{guard_lines}"
            "        return sum(prices) / len(prices)\n"
        )

    repo.commit({"ledger/__init__.py": "", "ledger/cart.py": cart("self.prices = prices", True)}, "initial import")
    bad = repo.commit({"ledger/cart.py": cart("self.prices = prices", False)}, "cart: drop the empty check", who="Eve")
    # A later change to a sibling method above (inside the same class) must not be taken for the cause.
    later = repo.commit({"ledger/cart.py": cart("self.prices = list(prices)", False)}, "cart: copy the prices")

    trace = repo.trace("from ledger.cart import Cart; Cart([]).mean_price")
    assert (trace.frames[-1].function, trace.frames[-1].line) == ("mean_price", 8)
    report = find_suspect(GitHistory(repo.path), trace)

    assert report.suspect is not None and report.suspect.sha == bad != later
    assert report.suspect_region is not None
    # From the decorator of `mean_price` down to the failing line, not from `class Cart`.
    assert report.suspect_region.region == Region(5, 8, "function", "mean_price")
    assert "changed the enclosing function `mean_price` (lines 5–8)" in report.evidence[0].note
    assert_everything_named_exists(repo.path, report)
    assert workspace.revert(repo.path, bad).ok


def test_a_removed_guard_in_the_caller_is_found_on_the_call_path(repo: Repo) -> None:
    report_v1 = (
        "from ledger.money import average\n\n\n"
        "def summary(values):\n"
        "    if not values:\n"
        '        return "no data"\n'
        '    return f"mean {average(values)}"\n'
    )
    report_v2 = report_v1.replace('    if not values:\n        return "no data"\n', "")
    repo.commit(
        {"ledger/__init__.py": "", "ledger/money.py": TIDY_AVERAGE, "ledger/report.py": report_v1}, "initial import"
    )
    bad = repo.commit({"ledger/report.py": report_v2}, "report: simplify summary", who="Eve")
    repo.commit({"README.md": "ledger\n"}, "docs: add a README")

    report = find_suspect(GitHistory(repo.path), repo.trace("from ledger.report import summary; summary([])"))

    assert [e.function for e in report.evidence] == ["average", "summary"]
    assert report.suspect is not None and report.suspect.sha == bad
    assert report.suspect_region is not None and report.suspect_region.frame.depth == 1
    assert report.evidence[1].commit == bad
    assert "changed the enclosing function `summary` (lines 4–5)" in report.evidence[1].note
    assert "most recent change on the failing call path" in report.root_cause
    assert report.confidence == 0.6  # neither the raising line nor its function changed
    assert_everything_named_exists(repo.path, report)
    assert workspace.revert(repo.path, bad).ok


# ---------------------------------------------------------------- regions from text alone


def _region(text: str, line: int, *, python: bool = True, function: str | None = None) -> Region:
    return enclosing_region(text.split("\n"), line, python=python, function=function)


def test_region_of_a_nested_function_and_of_module_level_code() -> None:
    source = (
        "import math\n"  # 1
        "\n"  # 2
        "def outer(xs):\n"  # 3
        "    def inner(x):\n"  # 4
        "        return math.sqrt(x)\n"  # 5
        "    if xs:\n"  # 6
        "        return [inner(x) for x in xs]\n"  # 7
        "\n"  # 8
        "\n"  # 9
        "RESULT = outer([-1])\n"  # 10
        "print(RESULT)\n"  # 11
    )
    assert _region(source, 5) == Region(4, 5, "function", "inner")
    assert _region(source, 7) == Region(3, 7, "function", "outer")  # past the nested def and the `if`
    assert _region(source, 4) == Region(4, 4, "function", "inner")  # a def line is its own definition
    # Module level: a window that stops short of the sibling `outer` above.
    assert _region(source, 10) == Region(10, 11, "window")


def test_region_in_braced_languages() -> None:
    js = (
        "function first(a) {\n"  # 1
        "  return a.b;\n"  # 2
        "}\n"  # 3
        "\n"  # 4
        "async function second(cart) {\n"  # 5
        "  if (cart.items) {\n"  # 6
        "    const total = cart.items.length;\n"  # 7
        "    return total.toFixed(2);\n"  # 8
        "  }\n"  # 9
        "}\n"  # 10
    )
    assert _region(js, 8, python=False, function="Object.second") == Region(5, 8, "function", "second")
    java = (
        "public class Pricing\n"  # 1
        "{\n"  # 2
        "    public int apply(Cart cart)\n"  # 3
        "    {\n"  # 4
        "        return cart.total() / cart.count();\n"  # 5
        "    }\n"  # 6
        "}\n"  # 7
    )
    assert _region(java, 5, python=False, function="com.shop.Pricing.apply") == Region(3, 5, "function", "apply")
    long_body = "func run() {\n" + "\tx := 1\n" * 30 + "\tpanic(x)\n}\n"
    assert _region(long_body, 32, python=False) == Region(17, 32, "window")  # 15 above, nothing below but `}`


# ---------------------------------------------------------------- the use case on the git adapters


async def test_the_use_case_on_git_worktrees_falls_back_to_the_default_branch_and_cleans_up(
    repo: Repo, tmp_path: Path
) -> None:
    repo.commit({"ledger/__init__.py": "", "ledger/money.py": GUARDED_AVERAGE}, "initial import")
    bad = repo.commit({"ledger/money.py": TIDY_AVERAGE}, "money: tidy average", who="Eve")
    trace = repo.run(TRIGGER).stderr
    cfg = RepoConfig(name="ledger", path=str(repo.path), services=["ledger-api"])
    workspaces = Workspaces(tmp_path / "work spaces")
    diagnosis = Diagnosis(repos=MemoryRepos({"ledger": cfg}), checkouts=GitCheckouts(workspaces), audit=MemoryAudit())
    incident_id = uuid.UUID("00000000-0000-4000-8000-000000000002")
    incident = IncidentOpenedPayload(
        fingerprint="f" * 16, title="average fails", service="ledger-api", severity=Severity.P2, repo="ledger",
        stack_trace=trace, commit="0" * 40,  # a deploy the repository never saw
    )  # fmt: skip

    payload = await diagnosis.diagnose(incident_id, incident)

    assert payload is not None and payload.base_commit == bad
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == bad
    assert payload.evidence[0].function == "average" and payload.confidence == 0.75
    assert not (workspaces.root / "worktrees" / str(incident_id)).exists()


# ---------------------------------------------------------------- the service on nats-server and Postgres


async def test_the_service_skips_an_incident_without_repository_and_diagnoses_one_with_it(
    repo: Repo, nats_url: str, fresh_db: str, js: JetStreamContext, tmp_path: Path
) -> None:
    repo.commit({"ledger/__init__.py": "", "ledger/money.py": GUARDED_AVERAGE}, "initial import")
    bad = repo.commit({"ledger/money.py": TIDY_AVERAGE}, "money: tidy average", who="Eve")
    settings = make_settings(nats_url, fresh_db, tmp_path).model_copy(
        update={"repos": [RepoConfig(name="ledger", path=str(repo.path), services=["ledger-api"])]}
    )
    async with running_stage(create_service(), bootstrap, settings, js) as svc:
        fields = {"fingerprint": "f" * 16, "title": "average fails", "service": "ledger-api", "severity": Severity.P2}
        orphan = IncidentOpened.create(IncidentOpenedPayload(**fields), source="triage", incident_id=uuid.uuid4())
        await bus.publish(svc.broker, orphan)
        sql = "SELECT details FROM audit_log WHERE action = 'diagnosis.skipped' AND incident_id = $1"
        details = await wait_for(lambda: svc.pool.fetchval(sql, orphan.incident_id))
        reason = (json.loads(details) if isinstance(details, str) else details)["reason"]
        assert reason == "no repository registered for service 'ledger-api'"

        payload = IncidentOpenedPayload(**fields, repo="ledger", stack_trace=repo.run(TRIGGER).stderr, commit=bad)
        opened = IncidentOpened.create(payload, source="triage", incident_id=uuid.uuid4())
        await bus.publish(svc.broker, opened)
        await wait_done(svc, opened)
        ready = [json.loads(m) for m in await stream_events(js, subjects.DIAGNOSIS_READY)]
        assert [(r["incident_id"], r["payload"]["suspect_commit"]["sha"]) for r in ready] == [
            (str(opened.incident_id), bad)
        ]

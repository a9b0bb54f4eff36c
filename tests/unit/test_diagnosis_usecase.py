"""The diagnosis use case on memory ports: skips, traces it cannot use, suspects, and the default-branch fallback."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from pagerpatch.git.workspace import GitError
from pagerpatch.kernel.errors import Poison
from pagerpatch.settings import RepoConfig
from schemas.events import DiagnosisReadyPayload, FrameVars, IncidentOpenedPayload, Severity
from services.diagnosis.domain.facts import Commit
from services.diagnosis.memory import MemoryAudit, MemoryCheckouts, MemoryHistory, MemoryRepos
from services.diagnosis.usecase import Diagnosis

T = TypeVar("T")
INCIDENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
DAY0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
INIT, BAD, DOCS = "1" * 40, "2" * 40, "3" * 40
API = "from shop.money import average\ndef checkout(cart):\n    return average(cart)\n"
MONEY = "def average(values):\n    return sum(values) / len(values)\n"
TRACE = """\
Traceback (most recent call last):
  File "/srv/app/shop/api.py", line 3, in checkout
    return average(cart)
  File "/srv/app/shop/money.py", line 2, in average
    return sum(values) / len(values)
ZeroDivisionError: division by zero
"""


def commits() -> dict[str, Commit]:
    """A linear history: the initial import, the bad commit, then a docs change on top."""
    out: dict[str, Commit] = {}
    parent: tuple[str, ...] = ()
    for day, (sha, subject) in enumerate([(INIT, "initial import"), (BAD, "money: tidy average"), (DOCS, "docs")]):
        when = DAY0 + timedelta(days=day)
        out[sha] = Commit(sha, parent, "Eve", "eve@example.com", when, when, subject)
        parent = (sha,)
    return out


def history(
    blames: Mapping[tuple[str, int], str | list[str]], changes: list[tuple[str, int, int, str]] | None = None
) -> MemoryHistory:
    return MemoryHistory(
        head=DOCS,
        commits=commits(),
        sources={"shop/__init__.py": "", "shop/api.py": API, "shop/money.py": MONEY, "README.md": "shop\n"},
        blames=dict(blames),
        changes=changes or [],
    )


def incident(**fields: Any) -> IncidentOpenedPayload:
    payload: dict[str, Any] = {
        "fingerprint": "f" * 16, "title": "checkout fails", "service": "checkout", "severity": Severity.P1,
        "repo": "shop", "stack_trace": TRACE, "commit": DOCS,
    }  # fmt: skip
    payload.update(fields)
    return IncidentOpenedPayload(**payload)


class Ports:
    """The use case on memory ports, with handles on each for assertions."""

    def __init__(self, refs: dict[str, MemoryHistory]) -> None:
        self.checkouts = MemoryCheckouts(refs=refs)
        self.audit = MemoryAudit()
        self.repos = MemoryRepos({"shop": RepoConfig(name="shop", path="/srv/shop", services=["checkout"])})
        self.guarded: list[str] = []
        self.diagnosis = Diagnosis(repos=self.repos, checkouts=self.checkouts, audit=self.audit)

    async def guard(self, repo: str, work: Callable[[], Awaitable[T]]) -> T:
        self.guarded.append(repo)
        return await work()


def ports(h: MemoryHistory) -> Ports:
    return Ports({DOCS: h, "main": h})


async def test_no_repository_is_skipped_audited_and_touches_no_git() -> None:
    p = ports(history({}))
    payload = await p.diagnosis.diagnose(INCIDENT, incident(repo=None), guard=p.guard)
    assert payload is None
    assert p.audit.skips == [(INCIDENT, "no repository registered for service 'checkout'")]
    assert p.checkouts.opened == [] and p.checkouts.refreshed == [] and p.guarded == []


async def test_an_unknown_repository_is_poison() -> None:
    p = ports(history({}))
    with pytest.raises(Poison, match="'ledger' is not registered"):
        await p.diagnosis.diagnose(INCIDENT, incident(repo="ledger"), guard=p.guard)
    assert p.checkouts.opened == [] and p.audit.skips == []


@pytest.mark.parametrize(
    ("trace", "why"),
    [
        pytest.param(None, "the alert carries no stack trace", id="no stack trace"),
        pytest.param("", "the alert carries no stack trace", id="empty stack trace"),
        pytest.param("checkout failed: upstream said 502", "the stack trace could not be parsed", id="unparsable"),
    ],
)
async def test_a_trace_it_cannot_use_gives_an_honest_non_answer(trace: str | None, why: str) -> None:
    p = ports(history({("shop/money.py", 2): BAD}))
    payload = await p.diagnosis.diagnose(INCIDENT, incident(stack_trace=trace), guard=p.guard)
    assert payload is not None
    assert payload.root_cause == f"No root cause found: {why}. A human needs to look at this incident."
    assert payload.suspect_commit is None and payload.evidence == [] and payload.confidence == 0.0
    assert (payload.repo, payload.base_commit, payload.severity) == ("shop", DOCS, Severity.P1)
    assert p.checkouts.closed == [DOCS]  # the worktree is removed whatever the outcome


async def test_the_commit_that_changed_the_failing_line_is_the_suspect() -> None:
    h = history({("shop/money.py", 2): BAD, ("shop/api.py", 3): INIT}, [("shop/api.py", 2, 3, INIT)])
    p = ports(h)
    payload = await p.diagnosis.diagnose(INCIDENT, incident(), guard=p.guard)
    assert payload is not None
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert payload.suspect_commit.subject == "money: tidy average"
    assert [(e.file, e.line, e.function, e.commit) for e in payload.evidence] == [
        ("shop/money.py", 2, "average", BAD),
        ("shop/api.py", 3, "checkout", INIT),
    ]
    assert "the suspect commit" in payload.evidence[0].note and "the suspect" not in payload.evidence[1].note
    assert payload.root_cause.startswith("ZeroDivisionError: division by zero raised in average() at shop/money.py:2")
    assert payload.confidence == 0.85  # changed the raising line, one commit ago
    assert (payload.base_commit, payload.title, payload.strategy) == (DOCS, "checkout fails", "stacktrace-blame")
    assert p.guarded == ["shop"] and p.checkouts.refreshed == ["shop"]
    assert p.checkouts.opened == [("shop", str(INCIDENT), DOCS)] and p.checkouts.closed == [DOCS]


async def test_a_guard_removed_above_the_failing_line_is_found_by_the_enclosing_functions_history() -> None:
    blames = {("shop/money.py", 2): INIT, ("shop/api.py", 3): INIT}
    p = ports(history(blames, [("shop/money.py", 1, 4, BAD)]))  # BAD deleted lines inside `average`
    payload = await p.diagnosis.diagnose(INCIDENT, incident(), guard=p.guard)
    assert payload is not None
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert payload.evidence[0].commit == BAD
    assert "changed the enclosing function `average` (lines 1–2)" in payload.evidence[0].note
    assert payload.confidence == 0.75


async def test_history_order_beats_a_skewed_committer_clock() -> None:
    rebased = "4" * 40  # made on top of DOCS on a machine whose clock was a week behind
    h = history({("shop/money.py", 2): BAD, ("shop/api.py", 3): rebased})
    skewed = DAY0 - timedelta(days=7)
    h.commits[rebased] = Commit(rebased, (DOCS,), "Dan", "dan@example.com", skewed, skewed, "api: pass the cart")
    h.head = rebased
    p = Ports({rebased: h})
    payload = await p.diagnosis.diagnose(INCIDENT, incident(commit=rebased), guard=p.guard)
    assert payload is not None
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == rebased
    assert payload.evidence[1].commit == rebased and "the suspect commit" in payload.evidence[1].note


async def test_only_verified_names_are_reported() -> None:
    h = history({("shop/money.py", 2): BAD, ("shop/api.py", 3): "9" * 40})  # the api line blames to a missing commit
    h.sources["shop/money.py"] = MONEY.replace("def average", "def mean")  # the frame's function is not defined
    p = ports(h)
    payload = await p.diagnosis.diagnose(INCIDENT, incident(), guard=p.guard)
    assert payload is not None
    assert [(e.file, e.function, e.commit) for e in payload.evidence] == [("shop/money.py", None, BAD)]


async def test_no_repository_frame_blames_nobody() -> None:
    p = ports(history({}))
    trace = TRACE.replace("/srv/app/shop/", "/usr/lib/python3.11/site-packages/other/")
    payload = await p.diagnosis.diagnose(INCIDENT, incident(stack_trace=trace), guard=p.guard)
    assert payload is not None
    assert payload.suspect_commit is None and payload.evidence == [] and payload.confidence == 0.1
    assert "No frame of the stack trace maps to a file of the repository" in payload.root_cause


async def test_an_alert_commit_the_repository_lacks_falls_back_to_the_default_branch() -> None:
    main = history({("shop/money.py", 2): BAD})
    main.head = BAD  # the default branch is behind the deploy the alert named
    p = Ports({"main": main})
    payload = await p.diagnosis.diagnose(INCIDENT, incident(commit="a" * 40), guard=p.guard)
    assert payload is not None
    assert payload.base_commit == BAD
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert p.checkouts.opened == [("shop", str(INCIDENT), "main")] and p.checkouts.closed == ["main"]


async def test_without_an_alert_commit_the_default_branch_is_diagnosed() -> None:
    p = ports(history({("shop/money.py", 2): BAD}))
    await p.diagnosis.diagnose(INCIDENT, incident(commit=None), guard=p.guard)
    assert p.checkouts.opened == [("shop", str(INCIDENT), "main")]


async def test_a_missing_default_branch_is_a_terminal_explained_diagnosis_not_a_retry() -> None:
    p = Ports({})  # neither the alert's commit nor `main` exists: the repository's branch is `master`
    p.checkouts.repo_head = ("master", DOCS)
    payload = await p.diagnosis.diagnose(INCIDENT, incident(commit="a" * 40), guard=p.guard)
    assert payload is not None
    assert payload.suspect_commit is None and payload.candidates == [] and payload.confidence == 0.0
    why = "default branch 'main' does not exist in shop; set default_branch (the repository's HEAD is 'master')"
    assert payload.root_cause == f"No root cause found: {why}. A human needs to look at this incident."
    assert payload.tried == [f"commit {'a' * 40} from the alert (skipped: not in shop)", why]
    assert payload.base_commit == DOCS  # the commit the repository's own HEAD names
    assert p.guarded == ["shop"] and p.checkouts.closed == []


async def test_a_missing_default_branch_of_a_repository_without_commits_still_answers() -> None:
    p = Ports({})
    payload = await p.diagnosis.diagnose(INCIDENT, incident(commit=None), guard=p.guard)
    assert payload is not None and payload.base_commit == "0" * 40 and payload.confidence == 0.0
    assert payload.tried == ["default branch 'main' does not exist in shop; set default_branch"]


LOCKED = GitError(("worktree", "add"), 128, "fatal: Unable to create '/cache/shop.git/index.lock': File exists.")


@pytest.mark.parametrize(("ref", "commit"), [("main", None), (DOCS, DOCS)], ids=["default branch", "alert commit"])
async def test_a_transient_git_failure_is_raised_for_the_guard_not_explained_away(ref: str, commit: str | None) -> None:
    p = ports(history({("shop/money.py", 2): BAD}))
    p.checkouts.failures[ref] = LOCKED
    with pytest.raises(GitError, match=r"index\.lock"):
        await p.diagnosis.diagnose(INCIDENT, incident(commit=commit), guard=p.guard)
    assert p.guarded == ["shop"] and p.checkouts.opened == []  # no fallback to another revision on a lock race


# ---------------------------------------------------------------- candidates set aside, and what is reported

GUARDED = "def average(values):\n    if not values:\n        return 0.0\n    return sum(values) / len(values)\n"
DOCUMENTED = 'def average(values):\n    """The mean of `values`."""\n    return sum(values) / len(values)\n'
WRAPPED = "def average(values):\n    return (\n        sum(values) / len(values)\n    )\n"
FMT, TESTS = "4" * 40, "5" * 40
TEST_FILE = "def test_average():\n    assert average([]) == 0.0\n"
TEST_TRACE = TRACE.replace(
    '  File "/srv/app/shop/api.py", line 3, in checkout\n    return average(cart)\n',
    '  File "/srv/app/tests/test_money.py", line 2, in test_average\n    assert average([]) == 0.0\n',
)


def later_history(*extra: tuple[str, str]) -> MemoryHistory:
    """INIT (guarded average) -> BAD (guard removed) -> DOCS (README) -> `extra` commits, one a day."""
    h = history({("shop/api.py", 3): INIT})
    h.versions = {("shop/money.py", INIT): GUARDED, ("shop/money.py", BAD): MONEY, ("shop/money.py", DOCS): MONEY}
    h.touched = {INIT: {"shop/api.py", "shop/money.py"}, BAD: {"shop/money.py"}, DOCS: {"README.md"}}
    h.changes = [("shop/money.py", 1, 4, INIT), ("shop/money.py", 1, 2, BAD), ("shop/api.py", 1, 3, INIT)]
    parent = DOCS
    for day, (sha, subject) in enumerate(extra, start=3):
        when = DAY0 + timedelta(days=day)
        h.commits[sha] = Commit(sha, (parent,), "Eve", "eve@example.com", when, when, subject)
        parent = h.head = sha
    return h


async def diagnose(h: MemoryHistory, **fields: Any) -> DiagnosisReadyPayload:
    p = Ports({h.head: h})
    payload = await p.diagnosis.diagnose(INCIDENT, incident(commit=h.head, **fields), guard=p.guard)
    assert payload is not None
    return payload


async def test_a_docstring_only_follow_up_is_set_aside_and_the_bug_commit_named() -> None:
    h = later_history((FMT, "docs: document average"))
    h.sources["shop/money.py"] = DOCUMENTED
    h.blames[("shop/money.py", 3)] = INIT  # the failing line itself is as old as the repository
    h.changes.append(("shop/money.py", 1, 3, FMT))
    h.touched[FMT] = {"shop/money.py"}
    trace = TRACE.replace("line 2, in average", "line 3, in average")

    payload = await diagnose(h, stack_trace=trace)

    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert payload.tried == ["4444444 docs: document average (skipped: only docstrings changed in average)"]
    assert [c.sha for c in payload.candidates] == [INIT]  # the next suspect, should reverting BAD fail
    assert "Set aside before it: 4444444 docs: document average" in payload.root_cause
    assert payload.exception_type == "ZeroDivisionError"


async def test_a_reformatted_failing_line_is_blamed_past_the_formatting_commit() -> None:
    h = later_history((FMT, "style: black"))
    h.sources["shop/money.py"] = WRAPPED
    h.blames[("shop/money.py", 3)] = [FMT, BAD]  # blame names BAD once FMT is looked through
    h.touched[FMT] = {"shop/money.py", "shop/api.py"}
    trace = TRACE.replace("line 2, in average\n    return sum(values) / len(values)", "line 3, in average\n    x")

    payload = await diagnose(h, stack_trace=trace)

    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert payload.evidence[0].commit == BAD and "the suspect commit" in payload.evidence[0].note
    assert payload.tried == ["4444444 style: black (skipped: only comments or formatting changed in average)"]
    assert payload.confidence == 0.85  # blamed on the raising line itself, as without the reformatting


async def test_a_commit_listed_in_git_blame_ignore_revs_is_looked_through() -> None:
    h = later_history((FMT, "style: black"))
    h.sources["shop/money.py"] = WRAPPED
    h.sources[".git-blame-ignore-revs"] = f"# formatting\n{FMT}\n"
    h.blames[("shop/money.py", 3)] = [FMT, BAD]
    h.changes.append(("shop/money.py", 1, 4, FMT))  # region history still lists it
    h.touched[FMT] = {"shop/money.py"}
    trace = TRACE.replace("line 2, in average\n    return sum(values) / len(values)", "line 3, in average\n    x")

    payload = await diagnose(h, stack_trace=trace)

    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert payload.tried == ["4444444 style: black (skipped: listed in .git-blame-ignore-revs)"]


async def test_a_test_only_commit_on_a_test_frame_is_set_aside() -> None:
    h = later_history((TESTS, "fix mypy"))
    h.sources["tests/test_money.py"] = TEST_FILE
    h.blames.update({("shop/money.py", 2): INIT, ("tests/test_money.py", 2): TESTS})
    h.changes.append(("tests/test_money.py", 1, 2, TESTS))
    h.touched[TESTS] = {"tests/test_money.py"}

    payload = await diagnose(h, stack_trace=TEST_TRACE)

    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert payload.tried == ["5555555 fix mypy (skipped: changed only test files: tests/test_money.py)"]


async def test_when_everything_is_set_aside_the_diagnosis_says_what_was_tried() -> None:
    h = later_history((TESTS, "tests: add test_average"))
    h.sources["tests/test_money.py"] = TEST_FILE
    h.blames = {("tests/test_money.py", 2): TESTS}
    h.changes = [("tests/test_money.py", 1, 2, TESTS)]
    h.touched[TESTS] = {"tests/test_money.py"}
    trace = TEST_TRACE.replace("/srv/app/shop/money.py", "/usr/lib/python3.11/statistics.py")

    payload = await diagnose(h, stack_trace=trace)

    assert payload.suspect_commit is None and payload.candidates == [] and payload.confidence == 0.1
    entry = "5555555 tests: add test_average (skipped: changed only test files: tests/test_money.py)"
    assert payload.tried == [entry]
    assert payload.root_cause.endswith(f"No suspect commit: everything looked at was set aside -- {entry}.")


async def test_frames_that_could_not_be_blamed_are_listed_in_tried() -> None:
    h = history({("shop/money.py", 2): BAD})  # the api frame's line 3 has no blame: it is not in the file
    payload = await diagnose(h)
    assert payload.suspect_commit is not None and payload.suspect_commit.sha == BAD
    assert payload.tried == [f"frame shop/api.py:3 in checkout (skipped: no line 3 in shop/api.py at {DOCS[:7]})"]


async def test_without_repository_frames_tried_names_the_frames_looked_at() -> None:
    trace = TRACE.replace("/srv/app/shop/api.py", "/usr/lib/python3.11/site-packages/x/api.py")
    trace = trace.replace("/srv/app/shop/money.py", "/srv/app/ledger/money_utils.py")
    payload = await diagnose(history({}), stack_trace=trace)
    assert payload.suspect_commit is None and payload.confidence == 0.1
    assert payload.tried == [
        "frame /srv/app/ledger/money_utils.py:2 in average (skipped: no file of the repository matches)",
        "frame /usr/lib/python3.11/site-packages/x/api.py:3 in checkout (skipped: dependency or runtime code)",
    ]


async def test_the_reproduction_is_the_innermost_repository_frames_captured_vars() -> None:
    frame_vars = [
        FrameVars(file="/srv/app/shop/api.py", function="checkout", line=3, vars={"cart": []}),
        FrameVars(file="/srv/app/shop/money.py", function="average", line=2, vars={"values": []}),
    ]
    payload = await diagnose(history({("shop/money.py", 2): BAD}), frame_vars=frame_vars)
    assert payload.reproduction == FrameVars(file="shop/money.py", function="average", line=2, vars={"values": []})
    assert payload.exception_type == "ZeroDivisionError"


async def test_candidates_are_the_next_suspects_best_first_and_at_most_ten() -> None:
    extra = [(f"{i:x}" * 40, f"change {i}") for i in range(6, 16)]  # ten more commits after DOCS
    h = later_history(*extra)
    h.sources["shop/deep.py"] = "".join(f"def f{n}():\n    return f{n + 1}()\n" for n in range(12))
    frames = "".join(f'  File "/srv/app/shop/deep.py", line {2 * n + 2}, in f{n}\n' for n in range(12))
    for n, (sha, _) in enumerate([(INIT, ""), (BAD, ""), *extra]):  # f0's line is the oldest, f11's the newest
        h.blames[("shop/deep.py", 2 * n + 2)] = sha
        h.touched[sha] = {"shop/deep.py"}
    trace = f"Traceback (most recent call last):\n{frames}RecursionError: maximum recursion depth exceeded\n"

    payload = await diagnose(h, stack_trace=trace)

    assert payload.suspect_commit is not None and payload.suspect_commit.sha == extra[-1][0]
    assert [c.sha for c in payload.candidates] == [sha for sha, _ in reversed(extra[:-1])] + [BAD]  # 10: INIT left
    assert payload.tried == [] and payload.exception_type == "RecursionError"

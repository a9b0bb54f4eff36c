"""What the notifier writes: the fix's branch, commit message, pull request title/body and notification texts
(pure: plain values in, plain values out)."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pagerpatch.settings import ServiceEntry
from schemas.events import (
    DiagnosisReadyPayload,
    FixApprovedPayload,
    FixValidatedPayload,
    RiskAssessment,
    SuspectCommit,
    TestRun,
)

BRANCH_PREFIX = "pagerpatch/"
UNPROVEN_DEFAULT = "the tests pass with and without this change, so nothing shows it fixes the failure"
LISTED = 20  # test ids listed per section; the rest are counted
BODY_LIMIT = 60_000  # GitHub refuses pull request bodies over 65,536 characters
CLIPPED = "\n\n…(clipped)"
# fixgen's proof_detail may already start with the word the body leads with.
_PROOF_PREFIX = re.compile(r"^(?:proved|unproven)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class PullRequest:
    """What is recorded about the pull request opened for an incident (one per incident)."""

    repo: str
    provider: str
    branch: str
    head_commit: str
    title: str
    body: str
    url: str
    number: int | None = None  # the forge's pull request number (GitHub)


def branch_name(incident_id: uuid.UUID) -> str:
    return f"{BRANCH_PREFIX}{incident_id}"


def commit_message(incident_id: uuid.UUID, fix: FixApprovedPayload) -> str:
    """The fix's commit message, tagged with its incident so the commit leads back to it."""
    return f"{fix.fix.commit_message.strip()}\n\npagerpatch incident {incident_id}\n"


def pr_title(fix: FixApprovedPayload) -> str:
    d = fix.fix.diagnosis
    lines = fix.fix.commit_message.strip().splitlines()
    base = d.title or (lines[0] if lines else f"revert for {fix.fix.repo}")
    return f"fix: {base}"[:200]


def pr_body(incident_id: uuid.UUID, fix: FixApprovedPayload) -> str:
    """The pull request's description: first whether anything proves the change fixes the failure, then the
    diagnosis, what was tried, the commit reverted, the tests at the base and after, and the risk."""
    f = fix.fix
    d = f.diagnosis
    lines = [
        *proof_lines(f),
        "",
        f"Automated fix for incident `{incident_id}` ({d.severity.value}).",
        "",
        "## Diagnosis",
        d.root_cause,
        "",
        f"Confidence: {d.confidence:.2f} (strategy: {d.strategy})",
    ]
    if d.suspect_commit:
        lines.append(f"Suspect commit: `{d.suspect_commit.sha[:12]}` {d.suspect_commit.subject}")
    if d.evidence:
        lines += ["", "### Evidence"]
        for ev in d.evidence:
            where = f"{ev.file}:{ev.line}"
            fn = f" in `{ev.function}`" if ev.function else ""
            commit = f" (last changed in `{ev.commit[:12]}`)" if ev.commit else ""
            note = f" — {ev.note}" if ev.note else ""
            lines.append(f"- `{where}`{fn}{commit}{note}")
    if d.tried:
        lines += ["", "### What was tried", *[f"- {entry}" for entry in d.tried]]
    lines += _report_lines(d)
    lines += ["", "## Change"]
    if f.reverted:
        lines.append(f"Reverted commit: {_commit(f.reverted)}")
    lines += [
        f"Strategy: {f.strategy}; {len(f.files_changed)} file(s), +{f.lines_added}/-{f.lines_removed}; "
        f"attempts: {f.attempts}",
        *[f"- `{p}`" for p in f.files_changed],
        "",
        *_tests_section(f),
        "",
        "## Risk",
        f"{fix.risk.level.value} (score {fix.risk.score}); approved by {fix.approved_by}"
        + (f": {fix.reason}" if fix.reason else ""),
        *[f"- {r}" for r in fix.risk.reasons],
        *_findings_lines(fix.risk),
    ]
    body = "\n".join(lines)
    if len(body) > BODY_LIMIT:  # forges refuse longer descriptions; the proof is at the top and survives the cut
        body = body[: BODY_LIMIT - len(CLIPPED)] + CLIPPED
    return body


def _report_lines(d: DiagnosisReadyPayload) -> list[str]:
    """The investigation agent's grounded report, when the diagnosis has one."""
    r = d.report
    if r is None:
        return []
    lines = ["", "### Investigation", r.summary.strip()]
    if r.root_cause.strip() and r.root_cause.strip() != d.root_cause.strip():
        lines += ["", f"Root cause: {r.root_cause.strip()}"]
    for claim in r.evidence[:LISTED]:
        where = f"{claim.file}:{claim.line}" if claim.line else claim.file
        symbol = f" in `{claim.symbol}`" if claim.symbol else ""
        note = f" — {claim.note}" if claim.note else ""
        lines.append(f"- `{where}`{symbol}{note}")
    if r.next_steps:
        lines += ["", "Next steps:", *[f"- {step}" for step in r.next_steps]]
    return lines


def proof_lines(fix: FixValidatedPayload) -> list[str]:
    """The body's first lines: proved (and by what) or UNPROVEN, said before anything else."""
    detail = _PROOF_PREFIX.sub("", fix.proof_detail.strip()).rstrip(".")
    if fix.proof == "proved":
        return [f"Proved: {detail or 'a check that fails at the base commit passes with this change'}."]
    return [
        f"UNPROVEN: {detail or UNPROVEN_DEFAULT}.",
        "No check fails without this change and passes with it: read it as a candidate, not as a proven fix.",
    ]


def _tests_section(f: FixValidatedPayload) -> list[str]:
    """The test runs at the base commit and with the change, and which tests the change fixes or removes."""
    lines = ["## Tests"]
    if f.base_tests is not None:
        lines.append(f"At the base commit `{f.base_commit[:12]}`: {_run(f.base_tests)}")
        if f.base_tests.failed_tests:
            lines.append(f"Failing at the base commit: {_listed(f.base_tests.failed_tests)}")
    with_change = _run(f.tests)
    lines.append(f"With the change: {with_change}" if f.base_tests is not None else with_change)
    if f.tests.failed_tests:
        lines.append(f"Failing with the change: {_listed(f.tests.failed_tests)}")
    if f.fixed_tests:
        lines += ["", "### Fixed tests", "Failing at the base commit, passing with the change:"]
        lines += [f"- `{test}`" for test in f.fixed_tests[:LISTED]] + _more(f.fixed_tests)
    if f.removed_tests:
        lines += ["", "### Removed tests", f"This revert removes {_count(len(f.removed_tests), 'test')}:"]
        lines += [f"- `{test}`" for test in f.removed_tests[:LISTED]] + _more(f.removed_tests)
    if f.reproduction_note:
        lines += ["", f"Reproduction: {f.reproduction_note}"]
    if f.regression_test:
        fence = "`" * max(3, _longest_backtick_run(f.regression_test) + 1)
        caption = (
            "Written with the fix; it fails at the base commit and passes with the change (it is in the patch):"
            if f.strategy == "model-patch"
            else "The failing call, replayed with the arguments the alert captured:"
        )
        language = "" if f.strategy == "model-patch" else "python"  # a model's test is in the repository's language
        lines += ["", "### Regression test", caption, f"{fence}{language}", f.regression_test.rstrip(), fence]
    return lines


def _findings_lines(risk: RiskAssessment) -> list[str]:
    """The review agent's findings (they can only have raised the risk the rules gave)."""
    if not risk.findings:
        return []
    verdict = {True: "it would merge this", False: "it would NOT merge this", None: "no verdict"}[risk.would_merge]
    floor = f"; the rules alone said {risk.rules_level.value}" if risk.rules_level is not None else ""
    lines = ["", "### Review findings", f"The review agent's self-critique ({verdict}{floor}):"]
    for finding in risk.findings[:LISTED]:
        where = f"{finding.file}:{finding.line}" if finding.line else finding.file
        regression = f" Could break: {finding.regression_risk}" if finding.regression_risk else ""
        lines.append(f"- **{finding.severity}** `{where}`: {finding.message}{regression}")
    return lines + _more(risk.findings)


def _run(run: TestRun) -> str:
    return (
        f"`{run.command}` in the {run.sandbox} sandbox: {'passed' if run.passed else 'FAILED'} — "
        f"{run.summary} ({run.duration_s:.1f}s)"
    )


def _commit(commit: SuspectCommit) -> str:
    author = f" ({commit.author})" if commit.author else ""
    return f"`{commit.sha[:12]}` {commit.subject}{author}"


def _listed(tests: list[str]) -> str:
    shown = ", ".join(f"`{t}`" for t in tests[:LISTED])
    return shown + (f" (and {len(tests) - LISTED} more)" if len(tests) > LISTED else "")


def _more(tests: Sequence[object]) -> list[str]:
    return [f"- … and {len(tests) - LISTED} more"] if len(tests) > LISTED else []


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


# Notification texts. The incident id may be missing from a notified event (it then reads "None", as it always has).


def pr_ready_text(incident_id: uuid.UUID | None, title: str, branch: str, url: str, *, proved: bool) -> str:
    said = "" if proved else " (UNPROVEN: nothing shows it fixes the failure; see the pull request)"
    return f"pull request ready for incident {incident_id}: {title} — branch {branch} at {url}{said}"


def approval_needed_text(incident_id: uuid.UUID | None, risk: RiskAssessment) -> str:
    return (
        f"approval needed for incident {incident_id} ({risk.level.value}: {'; '.join(risk.reasons)}). "
        f"Run `pagerpatch approve {incident_id}` or `pagerpatch reject {incident_id} --reason ...`"
    )


def rejected_text(incident_id: uuid.UUID | None, rejected_by: str, reason: str) -> str:
    return f"fix for incident {incident_id} rejected by {rejected_by}: {reason}"


def no_fix_text(incident_id: uuid.UUID | None, reason: str) -> str:
    return f"no validated fix for incident {incident_id}: {reason}"


def pr_failed_text(incident_id: uuid.UUID | None, where: str, reason: str) -> str:
    return f"could not open the pull request for incident {incident_id} on {where}: {reason}"


# Reviewers: the service catalog's owners of the repository, else CODEOWNERS for the changed files.


def split_reviewers(owners: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`@alice`, `bob`, `@org/team` -> (user logins, team slugs); e-mail owners are left out."""
    users: list[str] = []
    teams: list[str] = []
    for owner in owners:
        name = owner.strip().lstrip("@")
        if not name or "@" in name:
            continue
        target, value = (teams, name.split("/", 1)[1]) if "/" in name else (users, name)
        if value not in target:
            target.append(value)
    return tuple(users), tuple(teams)


def catalog_owners(repo: str, repo_services: list[str], catalog: Mapping[str, ServiceEntry]) -> list[str]:
    """Owners of the catalog's services that live in `repo` (by the entry's `repo` or the repo's `services`)."""
    owners: list[str] = []
    for name, entry in sorted(catalog.items()):
        if entry.repo == repo or name in repo_services:
            owners += [o for o in entry.owners if o not in owners]
    return owners


def codeowners_for(text: str, paths: list[str]) -> list[str]:
    """The owners CODEOWNERS gives the changed paths (the last matching rule of each path wins)."""
    rules: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            pattern, *owners = line.split()
            rules.append((pattern, owners))
    found: list[str] = []
    for path in paths:
        matched = [owners for pattern, owners in rules if _codeowners_match(pattern, path)]
        for owner in matched[-1] if matched else []:
            if owner not in found:
                found.append(owner)
    return found


def _codeowners_match(pattern: str, path: str) -> bool:
    """gitignore-style matching as CODEOWNERS uses it: `*`, `*.md` (any level), `docs/` (a directory at any
    level), `/build/` and `apps/web/*.ts` (anchored at the root)."""
    if pattern == "*":
        return True
    directory = pattern.endswith("/")
    pat = pattern.strip("/")
    anchored = pattern.startswith("/") or "/" in pat
    parts = path.split("/")
    for i in [0] if anchored else range(len(parts)):
        for j in range(i + 1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[i:j]), pat) and (j < len(parts) or not directory):
                return True
    return False


# A merged or closed pull request ends its incident.


def pr_outcome(action: str, number: int | None, actor: str) -> tuple[str, str] | None:
    """The incident's terminal state and outcome for a `pr.event` action (None: nothing to conclude)."""
    pr = f"pull request #{number}" if number is not None else "the pull request"
    by = f" by {actor}" if actor else ""
    if action == "merged":
        return "resolved", f"fix merged ({pr} merged{by})"
    if action == "closed":
        return "pr_closed", f"{pr} closed without merging{by}"
    return None

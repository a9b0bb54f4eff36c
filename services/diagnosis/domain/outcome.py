"""Which diagnosis stands: the investigation's grounded report (strategy `llm-investigation`) or the deterministic
one (`stacktrace-blame`) with the reason the model's did not (docs/investigation.md)."""

from __future__ import annotations

from schemas.events import DiagnosisReadyPayload, Evidence, SuspectCommit
from schemas.investigation import Claim
from services.diagnosis.domain.investigation import Outcome

STRATEGY = "llm-investigation"
NO_MODEL = "no model configured (set ANTHROPIC_API_KEY or PAGERPATCH_LLM__*)"
MAX_EVIDENCE = 50
_NOTE = 500


def with_fallback(deterministic: DiagnosisReadyPayload, reason: str) -> DiagnosisReadyPayload:
    """The deterministic diagnosis, saying why the investigation's did not stand."""
    return deterministic.model_copy(update={"fallback_reason": _clip(reason)})


def decide(deterministic: DiagnosisReadyPayload, outcome: Outcome) -> DiagnosisReadyPayload:
    """The payload of diagnosis.ready. With a report: its root cause, confidence and evidence first (then the
    deterministic evidence); its suspect commit only when grounded (`outcome.suspect`), the deterministic suspect
    otherwise -- and a deterministic suspect it replaces is kept as the first fallback candidate."""
    report = outcome.report
    if report is None:
        return with_fallback(deterministic, outcome.fallback_reason or "the investigation gave no report")
    suspect = deterministic.suspect_commit
    candidates = list(deterministic.candidates)
    if outcome.suspect is not None:
        c = outcome.suspect
        chosen = SuspectCommit(sha=c.sha, subject=_clip(c.subject), author=_clip(f"{c.author} <{c.author_email}>"),
                               authored_at=c.authored_at)  # fmt: skip
        if suspect is not None and suspect.sha != chosen.sha:
            candidates = [suspect, *candidates]
        candidates = [x for x in candidates if x.sha != chosen.sha][:10]
        suspect = chosen
    evidence = [_evidence(c) for c in report.evidence if c.line is not None]
    evidence += list(deterministic.evidence)
    return deterministic.model_copy(
        update={
            "strategy": STRATEGY,
            "root_cause": report.root_cause or deterministic.root_cause,
            "confidence": report.confidence,
            "suspect_commit": suspect,
            "candidates": candidates,
            "evidence": evidence[:MAX_EVIDENCE],
            "report": report,
            "fallback_reason": None,
        }
    )


def _evidence(c: Claim) -> Evidence:
    note = c.note or ""
    if c.quote:
        note = f"{note}; code: {c.quote.strip()}" if note else f"code: {c.quote.strip()}"
    assert c.line is not None
    return Evidence(file=c.file, line=c.line, function=c.symbol, commit=c.commit, note=_clip(note))


def _clip(text: str, limit: int = _NOTE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

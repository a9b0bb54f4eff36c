"""Diagnosis's I/O: a per-incident worktree of the repository, blamed along the stack trace."""

from __future__ import annotations

import logging

from pagerpatch.git import workspace, worktrees
from pagerpatch.settings import RepoConfig
from pagerpatch.traces.stacktrace import parse_trace
from schemas.events import DiagnosisReadyPayload, IncidentOpenedPayload
from services.diagnosis import logic
from services.diagnosis.domain.suspect import find_suspect

log = logging.getLogger(__name__)


def diagnose(
    ws: worktrees.Workspaces, repo: RepoConfig, incident_id: str, inc: IncidentOpenedPayload
) -> DiagnosisReadyPayload:
    """Check the repository out at the alert's commit (or the default branch) and find the suspect commit."""
    ws.cached_clone(repo)
    ref = inc.commit or repo.default_branch
    try:
        path = ws.worktree(repo, incident_id, ref, "diagnosis")
    except workspace.GitError:
        if ref == repo.default_branch:
            raise
        log.warning("commit %s from the alert is not in %s; using %s", ref, repo.name, repo.default_branch)
        path = ws.worktree(repo, incident_id, repo.default_branch, "diagnosis")
    try:
        base = workspace.resolve(path, "HEAD")
        if not inc.stack_trace:
            return logic.without_trace(repo.name, base, inc.title, inc.severity, "the alert carries no stack trace")
        trace = parse_trace(inc.stack_trace)
        if trace is None:
            return logic.without_trace(repo.name, base, inc.title, inc.severity, "the stack trace could not be parsed")
        report = find_suspect(path, trace, base)
        return report.to_diagnosis(repo.name, title=inc.title, severity=inc.severity)
    finally:
        ws.remove_worktree(path)

"""The failing call to replay: the local variables the alert captured in the innermost repository frame.

With them, a fix can be proved without a model: call that function with those arguments at the base commit
(it must raise the alert's exception) and after the revert (it must not).
"""

from __future__ import annotations

from collections.abc import Sequence

from pagerpatch.traces import symbols
from pagerpatch.traces.stacktrace import Frame, normalize_frame_path
from schemas.events import FrameVars


def reproduction_for(frame_vars: Sequence[FrameVars], mapped: Sequence[tuple[Frame, str]]) -> FrameVars | None:
    """The captured variables of the innermost repository frame (`mapped` is in call order, innermost last),
    with `file` made repository-relative; None when the alert carried none for that frame.

    A captured frame matches when its path and the repository file share their suffix and the function names
    agree; with several (recursion), the one on the same line, else the innermost.
    """
    if not mapped or not frame_vars:
        return None
    frame, file = mapped[-1]
    name = symbols.bare_function_name(frame.function) if frame.function else None
    if name is None:
        return None
    matches = [v for v in frame_vars if _same_file(v.file, file) and symbols.bare_function_name(v.function) == name]
    if not matches:
        return None
    chosen = next((v for v in reversed(matches) if v.line is not None and v.line == frame.line), matches[-1])
    return chosen.model_copy(update={"file": file, "line": chosen.line or frame.line})


def _same_file(captured: str, repo_file: str) -> bool:
    """Whether a captured frame's path names `repo_file` (absolute, relative, or a module-relative tail of it)."""
    path = normalize_frame_path(captured)
    return path == repo_file or path.endswith(f"/{repo_file}") or repo_file.endswith(f"/{path}")

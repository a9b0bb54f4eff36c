"""Fixgen's rules without I/O: which commits to try and why one is set aside (`candidates`), whether a revert is
proved (`proof`), the reproduction from captured frame variables (`reproduction`), and the payloads (`payloads`).

Everything here takes plain values and returns plain values, so the use case stays a sequence of port calls and
these rules are tested on their own.
"""

from services.fixgen.domain.candidates import (
    candidates_of,
    change_refusal,
    python_code_equal,
    python_files,
    removed_test_defs,
    revert_refusal,
    trace_files,
)
from services.fixgen.domain.payloads import (
    NO_SANDBOX,
    NO_SUSPECT,
    PREPARE_ATTEMPTS,
    REASON_LIMIT,
    STRATEGY,
    conflict_reason,
    fix_failed,
    fix_validated,
    no_sandbox_reason,
    no_suspect_reason,
    nothing_fixes_reason,
    retry_preparation,
    revert_message,
    setup_reason,
    test_run,
    test_run_of,
    tried_entry,
)
from services.fixgen.domain.proof import ReproductionCheck, Verdict, judge, removed_tests

__all__ = [
    "NO_SANDBOX",
    "NO_SUSPECT",
    "PREPARE_ATTEMPTS",
    "REASON_LIMIT",
    "STRATEGY",
    "ReproductionCheck",
    "Verdict",
    "candidates_of",
    "change_refusal",
    "conflict_reason",
    "fix_failed",
    "fix_validated",
    "judge",
    "no_sandbox_reason",
    "no_suspect_reason",
    "nothing_fixes_reason",
    "python_code_equal",
    "python_files",
    "removed_test_defs",
    "removed_tests",
    "retry_preparation",
    "revert_message",
    "revert_refusal",
    "setup_reason",
    "test_run",
    "test_run_of",
    "trace_files",
    "tried_entry",
]

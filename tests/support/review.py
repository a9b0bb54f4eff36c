"""The fix review's tests gate: a validated revert of a KeyError in `shop`, its tests passing."""

from __future__ import annotations

import uuid
from typing import Any

from schemas.events import DiagnosisReadyPayload, FixValidated, FixValidatedPayload, TestRun

SHA = "a" * 40
COUPON_PATCH = """\
diff --git a/shop/pricing.py b/shop/pricing.py
--- a/shop/pricing.py
+++ b/shop/pricing.py
@@ -10,2 +10,2 @@
 def discount(code):
-    return COUPONS[code]
+    return COUPONS.get(code, 0)
"""


def fix_payload(*, base_commit: str = SHA, summary: str = "", **fields: object) -> FixValidatedPayload:
    """The fix.validated payload of a one-attempt revert on `base_commit`; `fields` set any other field of it."""
    diagnosis = DiagnosisReadyPayload(repo="shop", base_commit=base_commit, root_cause="KeyError", confidence=0.9)
    tests = TestRun(command="pytest", passed=True, exit_code=0, summary=summary, duration_s=1.0)
    return FixValidatedPayload.model_validate(
        {"repo": "shop", "base_commit": base_commit, "strategy": "revert-suspect", "patch": "",
         "commit_message": "Revert", "attempts": 1, "tests": tests, "diagnosis": diagnosis, **fields}
    )  # fmt: skip


def validated_fix(incident: uuid.UUID, **fields: Any) -> FixValidated:
    """fixgen's fix.validated for `incident`, its payload `fix_payload(**fields)`."""
    return FixValidated.create(fix_payload(**fields), source="fixgen", incident_id=incident)

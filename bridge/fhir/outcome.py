"""OperationOutcome builders."""

from __future__ import annotations

from typing import Any


def operation_outcome(
    *,
    severity: str,
    code: str,
    diagnostics: str,
    expression: str | None = None,
    details_code: str | None = None,
) -> dict[str, Any]:
    """Build an OperationOutcome with one issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    if details_code:
        issue["details"] = {
            "coding": [{"system": "urn:carebridge:error-code", "code": details_code}],
            "text": diagnostics,
        }
    return {"resourceType": "OperationOutcome", "issue": [issue]}

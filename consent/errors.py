"""The consent engine's exceptions.

``consent`` never imports ``bridge``, so these do not derive from ``BridgeError``; the
bridge translates them at its boundary (``PolicyError`` -> ``ConfigurationError``,
``ConsentDenied`` -> ``PermissionDeniedError`` or not-found, ``ConsentParseError`` ->
``FhirValidationError`` when a Consent is written).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consent.model import Decision


class ConsentError(Exception):
    """Base of every error the consent engine raises on purpose."""


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file: where, what and how to fix it."""

    file: str
    key: str
    message: str
    hint: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message} (hint: {self.hint})"


class PolicyError(ConsentError):
    """A policy file is missing, unreadable or invalid; lists every problem found."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        self.file = first.file
        self.key = first.key
        self.hint = first.hint
        more = len(self.problems) - 1
        lines = [str(p) for p in self.problems]
        summary = f"invalid consent policy ({more + 1} problem{'s' if more else ''}):"
        super().__init__("\n  ".join([summary, *lines]))


class ConsentParseError(ConsentError):
    """A FHIR Consent cannot be interpreted; ``element`` names where (``provision.actor[0]``)."""

    def __init__(self, message: str, *, element: str = "", consent_id: str | None = None) -> None:
        self.message = message
        self.element = element
        self.consent_id = consent_id
        where = f"Consent/{consent_id}" if consent_id else "Consent"
        if element:
            where = f"{where} {element}"
        super().__init__(f"{where}: {message}")


class ConsentDenied(ConsentError):
    """Access was denied; ``decision`` says why (its reasons are safe to show the user)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        text = decision.reasons[0].text if decision.reasons else "access denied"
        super().__init__(text)

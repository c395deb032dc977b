"""NHS number checks (NHS Data Dictionary: 10 digits, modulus 11 check digit)."""

from __future__ import annotations

import re

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
_SEPARATORS = re.compile(r"[\s-]")


def normalise(value: str) -> str:
    """Strip spaces and hyphens as NHS numbers are often written ``943 476 5919``."""
    return _SEPARATORS.sub("", value)


def check_digit(first_nine: str) -> int | None:
    """Return the modulus 11 check digit for nine digits, or None if no valid one exists."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(first_nine))
    digit = 11 - (total % 11)
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def is_valid(value: str) -> bool:
    """Say whether ``value`` (after normalising) is a checksum-valid NHS number."""
    v = normalise(value)
    if len(v) != 10 or not v.isascii() or not v.isdigit():
        return False
    if v == v[0] * 10:
        # All-same-digit numbers pass the checksum but are never issued.
        return False
    expected = check_digit(v[:9])
    return expected is not None and expected == int(v[9])


def invalid_reason(value: str) -> str | None:
    """Explain why ``value`` is not a valid NHS number, or None when it is valid."""
    v = normalise(value)
    if not v:
        return "is empty"
    if not (v.isascii() and v.isdigit()):
        return "must contain only digits"
    if len(v) != 10:
        return f"must have 10 digits, has {len(v)}"
    if v == v[0] * 10:
        return "is a repeated digit, never issued"
    expected = check_digit(v[:9])
    if expected is None:
        return "has no valid check digit (modulus 11 gives 10)"
    if expected != int(v[9]):
        return f"fails the modulus 11 check (check digit should be {expected})"
    return None

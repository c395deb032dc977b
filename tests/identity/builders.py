"""Typed builders of Patients with the demographics matching reads."""

from __future__ import annotations

from typing import Any

from bridge.core.nhs_number import NHS_NUMBER_SYSTEM

# Valid-checksum NHS numbers from the 999 test range.
NHS = ("9990000018", "9990000026", "9990000034", "9990000042", "9990000050")
INVALID_NHS = "9990000019"
ASC_SYSTEM = "https://fhir.aire-valley.example.gov.uk/Id/asc-person-id"
CHS_SYSTEM = "https://fhir.aire-valley-community.example.nhs.uk/Id/chs-mrn"


def person(
    rid: str,
    *,
    family: str = "Quennell-Sandiford",
    given: str = "Philippa",
    middle: str | None = None,
    preferred: str | None = None,
    birth_date: str | None = "1941-03-07",
    gender: str | None = "female",
    postcode: str | None = "LS14 1SX",
    nhs_number: str | None = None,
    invalid_nhs_number: str | None = None,
    local_system: str = ASC_SYSTEM,
    **extra: Any,
) -> dict[str, Any]:
    """Return a Patient as the mappings make it (official name, optional usual name)."""
    identifiers: list[dict[str, Any]] = [{"system": local_system, "value": rid, "use": "usual"}]
    if nhs_number:
        identifiers.append({"system": NHS_NUMBER_SYSTEM, "value": nhs_number})
    if invalid_nhs_number:
        identifiers.append(
            {"system": "https://carebridge.example.org/Id/invalid-nhs", "value": invalid_nhs_number}
        )
    names: list[dict[str, Any]] = [
        {"use": "official", "family": family, "given": [g for g in (given, middle) if g]}
    ]
    if preferred:
        names.append({"use": "usual", "family": family, "given": [preferred]})
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "id": rid,
        "identifier": identifiers,
        "name": names,
    }
    if gender:
        res["gender"] = gender
    if birth_date:
        res["birthDate"] = birth_date
    if postcode:
        res["address"] = [{"use": "home", "line": ["1 Ash Grove"], "postalCode": postcode}]
    res.update(extra)
    return res

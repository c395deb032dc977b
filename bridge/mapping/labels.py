"""The security labels mappings may assign (``meta.security``), by the name specs use.

HL7 v3 ActCode sensitivity codes for the categories DESIGN.md names, plus a local label
for safeguarding, which has no HL7 code. The consent gate reads these labels.
"""

from __future__ import annotations

from typing import Any

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
LOCAL_LABEL_SYSTEM = "https://carebridge.example.org/fhir/CodeSystem/security-label"
MAPPING_SPEC_TAG_SYSTEM = "https://carebridge.example.org/fhir/CodeSystem/mapping-spec"

# name -> (system, code, display)
LABELS: dict[str, tuple[str, str, str]] = {
    "PSY": (V3_ACT_CODE, "PSY", "psychiatry information sensitivity"),
    "ETH": (V3_ACT_CODE, "ETH", "substance abuse information sensitivity"),
    "SDV": (
        V3_ACT_CODE,
        "SDV",
        "sexual assault, abuse, or domestic violence information sensitivity",
    ),
    "SEX": (V3_ACT_CODE, "SEX", "sexuality and reproductive health information sensitivity"),
    "STD": (V3_ACT_CODE, "STD", "sexually transmitted disease information sensitivity"),
    "HIV": (V3_ACT_CODE, "HIV", "HIV/AIDS information sensitivity"),
    "SAFEGUARDING": (LOCAL_LABEL_SYSTEM, "SAFEGUARDING", "safeguarding information"),
    # On a Patient: restricted demographics (a sensitive address). The access gate then
    # withholds address and contact details of every record of the person.
    "R": (V3_CONFIDENTIALITY, "R", "restricted"),
}
_BY_CODING = {(system, code): name for name, (system, code, _) in LABELS.items()}


def label_coding(name: str) -> dict[str, Any]:
    """Return the Coding of a label by name (``KeyError`` for an unknown name)."""
    system, code, display = LABELS[name]
    return {"system": system, "code": code, "display": display}


def is_label(system: str | None, code: str | None) -> bool:
    """Say whether (system, code) is one of the labels above."""
    return (system, code) in _BY_CODING


def canonical(coding: dict[str, Any]) -> dict[str, Any]:
    """Return the label table's form of a label coding (its display)."""
    return label_coding(_BY_CODING[(coding.get("system"), coding.get("code"))])

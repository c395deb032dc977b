"""The access gate: consent-checked, audited reads of a person's records."""

from bridge.access.gate import (
    AccessGate,
    PersonAccess,
    Released,
    Withheld,
    check_person_id,
    denied,
)
from bridge.access.relationships import AccessConfig, relationships_of

__all__ = [
    "AccessConfig",
    "AccessGate",
    "PersonAccess",
    "Released",
    "Withheld",
    "check_person_id",
    "denied",
    "relationships_of",
]

"""Stable resource ids derived from where a record came from."""

from __future__ import annotations

import re
import uuid

# A fixed namespace: changing it would re-key every stored resource.
_NAMESPACE = uuid.UUID("889d87db-2c2f-53bb-ac97-d69fa3923d74")  # uuid5(URL, carebridge ids)
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def stable_id(source_system: str, source_kind: str, source_id: str) -> str:
    """Return the resource id for a (source system, kind, source id) triple.

    Re-ingesting the same source record therefore updates one resource, never duplicates it.
    """
    for name, part in (("source_system", source_system), ("source_kind", source_kind)):
        if not part or "|" in part:
            raise ValueError(f"{name} must be non-empty and must not contain '|'")
    if not source_id:
        raise ValueError("source_id must be non-empty")
    return str(uuid.uuid5(_NAMESPACE, f"{source_system}|{source_kind}|{source_id}"))


def is_fhir_id(value: str) -> bool:
    """Say whether ``value`` is a legal FHIR logical id."""
    return bool(FHIR_ID.match(value))

"""The ASC record kinds: export file names, id and version fields, typed CSV columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from adapters.base import AdapterError

SYSTEM: Final = "asc"

# How a CSV cell is decoded; columns not listed in a kind are text (kept verbatim).
ColumnType = Literal["text", "bool", "number", "list"]
Format = Literal["jsonl", "csv"]
FORMATS: Mapping[str, Format] = {".jsonl": "jsonl", ".csv": "csv"}


@dataclass(frozen=True, eq=False)
class Kind:
    """One ASC record kind: where it is exported and which fields identify and order it."""

    name: str
    # The export file stem (``persons`` → persons.jsonl / persons.csv) and the HTTP collection.
    collection: str
    id_field: str
    version_field: str = "updated_at"
    columns: Mapping[str, ColumnType] = field(default_factory=dict)

    def column_type(self, column: str) -> ColumnType:
        """Return how a CSV cell of ``column`` is decoded."""
        return self.columns.get(column, "text")


# Load order: persons first, because every other kind refers to a person by ``person_id``;
# loading them first lets those references resolve when the referring record is first stored.
KINDS: Mapping[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "person",
            "persons",
            "person_id",
            columns={
                "sensitive_address": "bool",
                "interpreter_required": "bool",
                "accessibility_needs": "list",
                "has_unpaid_carer": "bool",
            },
        ),
        Kind("contact", "contacts", "contact_id"),
        Kind(
            "assessment",
            "assessments",
            "assessment_id",
            columns={"eligible_needs_identified": "bool", "eligible_outcomes": "list"},
        ),
        Kind(
            "service",
            "services",
            "service_id",
            columns={"planned_units_per_week": "number", "unit_cost": "number"},
        ),
        Kind("allocation", "allocations", "allocation_id"),
        Kind(
            "carer",
            "carers",
            "carer_id",
            columns={
                "lives_with": "bool",
                "hours_caring_per_week": "number",
                "carer_assessment_offered": "bool",
            },
        ),
        Kind("consent", "consents", "consent_id", columns={"excluded_categories": "list"}),
        Kind(
            "safeguarding",
            "safeguarding",
            "concern_id",
            columns={"person_views_sought": "bool"},
        ),
    )
}

_BY_COLLECTION = {k.collection: k for k in KINDS.values()}


def get_kind(name: str) -> Kind:
    """Return the kind called ``name`` or raise an AdapterError listing the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        known = ", ".join(KINDS)
        raise AdapterError(
            f"unknown ASC record kind {name!r}; known kinds: {known}", field="kind"
        ) from None


def known_file_names() -> list[str]:
    """Return the export file names the adapter recognises, in load order."""
    return [f"{k.collection}{suffix}" for suffix in FORMATS for k in KINDS.values()]


def kind_for_path(path: str | Path) -> tuple[Kind, Format]:
    """Return the kind and format of an export file, or raise an AdapterError with a hint."""
    p = Path(path)
    kind = _BY_COLLECTION.get(p.stem)
    fmt = FORMATS.get(p.suffix.lower())
    if kind is None or fmt is None:
        jsonl = ", ".join(f"{k.collection}.jsonl" for k in KINDS.values())
        raise AdapterError(
            f"unknown ASC export file {p.name!r}: expected one of {jsonl}"
            " (or the same names ending .csv)",
            field="file",
            origin=p.name,
        )
    return kind, fmt

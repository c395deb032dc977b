"""What mapping one record returns: resources with their source keys, and warnings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MappedResource:
    """One FHIR resource and the source key its stable id derives from.

    ``key`` is (source system, key kind, key value): the store derives the id with
    ``bridge.core.ids.stable_id(*key)``, which is what ``resource["id"]`` already holds.
    """

    resource: dict[str, Any]
    key: tuple[str, str, str]

    @property
    def resource_type(self) -> str:
        """Return the resource's type."""
        return str(self.resource["resourceType"])

    @property
    def id(self) -> str:
        """Return the resource's (stable) id."""
        return str(self.resource["id"])

    @property
    def reference(self) -> str:
        """Return a relative reference to the resource (``Patient/<id>``)."""
        return f"{self.resource_type}/{self.id}"


@dataclass(frozen=True)
class MappingWarning:
    """A problem that did not stop the record (an unmapped code kept as text…)."""

    spec: str
    rule: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.spec} rule {self.rule}: {where}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        """Return the warning as plain data."""
        return {"spec": self.spec, "rule": self.rule, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class MappingResult:
    """Everything one source record mapped to."""

    spec: str  # "<system>/<kind>"
    version: str
    resources: tuple[MappedResource, ...]
    warnings: tuple[MappingWarning, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (preview output)."""
        return {
            "spec": self.spec,
            "version": self.version,
            "resources": [m.resource for m in self.resources],
            "keys": [list(m.key) for m in self.resources],
            "warnings": [w.to_dict() for w in self.warnings],
        }

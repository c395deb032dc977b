"""Validate FHIR resources with the R4B models and name the failing element path."""

from __future__ import annotations

from functools import cache
from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource

from bridge.core.errors import FhirValidationError, UnknownResourceTypeError

# The resource types carebridge stores and serves (DESIGN.md "Resource types in use").
SUPPORTED_TYPES: tuple[str, ...] = (
    "AllergyIntolerance",
    "AuditEvent",
    "CarePlan",
    "CareTeam",
    "Communication",
    "Condition",
    "Consent",
    "Encounter",
    "EpisodeOfCare",
    "Flag",
    "HealthcareService",
    "Location",
    "Observation",
    "Organization",
    "Patient",
    "Person",
    "Practitioner",
    "PractitionerRole",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
    "Task",
)


@cache
def model_class(resource_type: str) -> type[Resource]:
    """Return the R4B model class for a supported resource type."""
    if resource_type not in SUPPORTED_TYPES:
        raise UnknownResourceTypeError(
            f"'{resource_type}' is not a resource type carebridge supports",
            field="resourceType",
            extra={"supported": list(SUPPORTED_TYPES)},
        )
    return get_fhir_model_class(resource_type)  # type: ignore[no-any-return]


def element_path(resource_type: str, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a FHIR element path: ``Patient.name[0].family``."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or part in {"__root__"}:
            continue
        else:
            path += f".{part}"
    return path


def validate(resource: dict[str, Any]) -> Resource:
    """Validate a resource dict; raise :class:`FhirValidationError` naming the element path."""
    if not isinstance(resource, dict):
        raise FhirValidationError("a FHIR resource must be a JSON object", field="resourceType")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise FhirValidationError("resourceType is missing", field="resourceType")
    cls = model_class(rtype)
    try:
        return cls.model_validate(resource)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        path = element_path(rtype, tuple(first["loc"]))
        reason = first["msg"].removeprefix("Value error, ")
        raise FhirValidationError(
            f"{path}: {reason}",
            field=path,
            extra={
                "errors": [
                    {
                        "path": element_path(rtype, tuple(e["loc"])),
                        "reason": e["msg"].removeprefix("Value error, "),
                    }
                    for e in errors[:20]
                ]
            },
        ) from None


def to_json_dict(model: Resource) -> dict[str, Any]:
    """Dump a model as FHIR JSON (aliases, no nulls)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)

"""Recording consent decisions through FHIR: create, update (withdrawal is a new version),
search by patient. Consents are never deleted.

Every Consent is read by the consent engine before it is stored, so one the engine could
not interpret is refused at the door (naming the element) instead of failing closed later.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request

from bridge.api.deps import Resources, audit_record, record_audit, require
from bridge.api.errors import FHIR_JSON
from bridge.api.routers.fhir import (
    FhirResponse,
    _audit_read,
    _base_url,
    _if_match,
    _parse_resource,
    _version_headers,
    read_body,
)
from bridge.auth.principal import Principal
from bridge.core.errors import BridgeError, FhirValidationError, InvalidIdentifierError
from bridge.core.ids import is_fhir_id
from bridge.identity import service as identity_service
from bridge.store.resources import ResourceRepository, StoredResource
from consent import ConsentParseError, ConsentRecord

router = APIRouter(prefix="/fhir/Consent", tags=["FHIR", "consent"])
_WRITE_DOC: dict[int | str, dict[str, Any]] = {
    201: {"description": "Created", "content": {FHIR_JSON: {}}},
    200: {"description": "Updated (a new version) or unchanged", "content": {FHIR_JSON: {}}},
    412: {"description": "If-Match names a version that is not current"},
    422: {"description": "Not a valid or not an interpretable Consent; expression names it"},
}


def _check_readable(resource: dict[str, Any]) -> None:
    try:
        ConsentRecord.from_fhir(resource)
    except ConsentParseError as exc:
        path = f"Consent.{exc.element}" if exc.element else "Consent"
        raise FhirValidationError(
            f"{path}: the consent engine cannot interpret this Consent: {exc.message}",
            field=path,
        ) from None


def _store(
    request: Request,
    principal: Principal,
    resources: ResourceRepository,
    resource: dict[str, Any],
    if_match: int | None,
) -> FhirResponse:
    _check_readable(resource)
    result = resources.put(resource, if_match=if_match)
    stored = result.stored
    # Point the Consent at its patient's Person, so the access gate finds it at once.
    identity_service.attach_resource(
        resources.session, resource=stored, crypto=resources.crypto, clock=resources.clock
    )
    _audit_consent(request, principal, resources, stored, created=result.created)
    headers = _version_headers(request, stored)
    headers["Location"] = headers["Content-Location"]
    return FhirResponse(stored.content, status_code=201 if result.created else 200, headers=headers)


def _audit_consent(
    request: Request,
    principal: Principal,
    resources: ResourceRepository,
    stored: StoredResource,
    *,
    created: bool,
) -> None:
    patient_ref = ((stored.content or {}).get("patient") or {}).get("reference", "")
    person_id = None
    if patient_ref.startswith("Patient/"):
        try:
            person_id = resources.read("Patient", patient_ref.split("/", 1)[1]).person_id
        except BridgeError:  # an unknown patient does not stop recording the decision
            person_id = None
    record_audit(
        request,
        resources.session,
        audit_record(
            request,
            principal,
            action="consent.create" if created else "consent.update",
            outcome="success",
            person_id=person_id,
            detail={
                "resources": [f"Consent/{stored.id}/{stored.version_id}"],
                "patient": patient_ref,
                "status": (stored.content or {}).get("status"),
            },
        ),
    )


@router.post(
    "", summary="Record a consent decision", response_class=FhirResponse, responses=_WRITE_DOC
)
def create(
    request: Request,
    principal: Annotated[Principal, Depends(require("consent.write"))],
    body: Annotated[bytes, Depends(read_body)],
    resources: Resources,
) -> FhirResponse:
    """Store a new Consent under a server-assigned id."""
    rid = str(uuid.uuid4())
    data = _parse_body_for_create(body, rid)
    return _store(request, principal, resources, data, None)


def _parse_body_for_create(body: bytes, rid: str) -> dict[str, Any]:
    try:
        given = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        given = None
    if isinstance(given, dict):
        # FHIR create: the server assigns the id, whatever the client sent.
        given = {**given, "id": rid}
        body = orjson.dumps(given)
    return _parse_resource(body, "Consent", rid)


@router.put(
    "/{resource_id}",
    summary="Update a consent decision (a new version)",
    response_class=FhirResponse,
    responses=_WRITE_DOC,
)
def update(
    request: Request,
    resource_id: str,
    principal: Annotated[Principal, Depends(require("consent.write"))],
    body: Annotated[bytes, Depends(read_body)],
    resources: Resources,
) -> FhirResponse:
    """Store a new version of a Consent (a withdrawal is recorded this way too)."""
    if not is_fhir_id(resource_id):
        raise InvalidIdentifierError(
            "A FHIR id is 1-64 characters of A-Z, a-z, 0-9, '-' and '.'.", field="id"
        )
    data = _parse_resource(body, "Consent", resource_id)
    return _store(request, principal, resources, data, _if_match(request))


@router.get("", summary="Consents of a patient (searchset Bundle)", response_class=FhirResponse)
def search(
    request: Request,
    principal: Annotated[Principal, Depends(require("consent.read"))],
    resources: Resources,
    patient: Annotated[str, Query(description="Patient/<id> or <id>")],
) -> FhirResponse:
    """Return every current Consent whose patient is the given Patient."""
    pid = patient.removeprefix("Patient/")
    if not is_fhir_id(pid):
        raise InvalidIdentifierError("patient must be Patient/<id>", field="patient")
    found = resources.find_by_patient("Consent", pid)
    _audit_read(request, principal, resources, "search", found)
    base = _base_url(request)
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": [
                {
                    "fullUrl": f"{base}/Consent/{c.id}",
                    "resource": c.content,
                    "search": {"mode": "match"},
                }
                for c in found
            ],
        }
    )

"""The FHIR R4 REST API subset: capabilities, read, vread, instance history, update, delete.

Search and ``$everything`` live in ``fhir_search``.

Every request is authenticated and authorised by permission (``bridge.auth.roles``). Bodies
are parsed here with orjson, not by pydantic body models, so a malformed body gets an error
that names the actual problem. Errors render as OperationOutcome (``bridge.api.errors``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from bridge import __version__
from bridge.access.gate import AccessGate
from bridge.api.deps import Resources, audit_record, record_audit, require
from bridge.api.errors import FHIR_JSON, error_response
from bridge.auth.principal import Principal
from bridge.core.clock import Clock, fhir_instant
from bridge.core.errors import (
    BridgeError,
    GoneError,
    InvalidIdentifierError,
    MalformedBodyError,
    MethodNotAllowedError,
    NotFoundError,
    ValidationError,
)
from bridge.core.ids import is_fhir_id
from bridge.fhir.validate import SUPPORTED_TYPES, model_class
from bridge.store.resources import ResourceRepository, StoredResource

router = APIRouter(prefix="/fhir", tags=["FHIR"])
access_log = logging.getLogger("carebridge.access")

FHIR_VERSION = "4.0.1"
INTERACTIONS: tuple[str, ...] = ("read", "vread", "history-instance", "update", "delete")
# What `GET /fhir/{type}` implements (bridge.api.routers.fhir_search), per type:
# parameter -> (FHIR search parameter type, what it matches). The CapabilityStatement and
# the parser both read this table, so neither can claim what the other does not do.
_COMMON_PARAMS: dict[str, tuple[str, str]] = {
    "_id": ("token", "The resource id (comma-separated ids: any of them)."),
    "_lastUpdated": ("date", "meta.lastUpdated, with prefixes eq ne gt ge lt le."),
}
_CLINICAL_PARAMS: dict[str, tuple[str, str]] = {
    "patient": ("reference", "Patient/<id> (or the bare id): required."),
    "subject": ("reference", "The same as patient."),
    "date": ("date", "The resource's own date (see docs/api.md), with prefixes."),
    "status": ("token", "The status code (Condition: its clinical status)."),
    **_COMMON_PARAMS,
}
SEARCH_PARAMS: dict[str, dict[str, tuple[str, str]]] = {
    "Patient": {
        "identifier": ("token", "system|value; NHS numbers through the keyed blind index."),
        "name": ("string", "Whole words of any name (family, given, text), any case/accents."),
        "family": ("string", "Whole words of the family name, any case or accents."),
        "given": ("string", "Whole words of a given name, any case or accents."),
        "birthdate": ("date", "The birth date, with prefixes (ranges need another parameter)."),
        **_COMMON_PARAMS,
    },
    **{
        rtype: _CLINICAL_PARAMS
        for rtype in (
            "CarePlan",
            "Condition",
            "Encounter",
            "EpisodeOfCare",
            "Flag",
            "Observation",
            "ServiceRequest",
        )
    },
}
EVERYTHING_DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
_MAX_VERSION = 2**31 - 1
_IF_MATCH = re.compile(r'^\s*(?:W/)?"(\d{1,10})"\s*$')
_TYPE_PARAM = "resource_type"
# Records whose history is the point: a change is a new version, never a deletion.
NEVER_DELETED = {
    "Consent": "Consents are never deleted: record a withdrawal as a new version"
    " (PUT with status inactive or a deny provision).",
    "AuditEvent": "Audit records are never deleted.",
}


class FhirResponse(Response):
    """A FHIR JSON response (``application/fhir+json``)."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token (OperationOutcome)"},
    403: {"description": "The caller's roles lack the permission (OperationOutcome)"},
}
_RESOURCE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The resource", "content": {FHIR_JSON: {}}},
    404: {"description": "Unknown resource type or id (OperationOutcome)"},
    410: {"description": "The resource was deleted (OperationOutcome)"},
    **_ERRORS_DOC,
}
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The FHIR resource; its resourceType and id must match the URL.",
        "content": {FHIR_JSON: {"schema": {"type": "object"}}},
    }
}


# -- helpers ------------------------------------------------------------------------------


def _check_target(resource_type: str, resource_id: str) -> None:
    model_class(resource_type)  # UnknownResourceTypeError (404) for types we do not hold
    if not is_fhir_id(resource_id):
        raise InvalidIdentifierError(
            "A FHIR id is 1-64 characters of A-Z, a-z, 0-9, '-' and '.'.", field="id"
        )


def _version(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= _MAX_VERSION:
        raise InvalidIdentifierError(
            "versionId must be a positive whole number.", field="versionId"
        )
    return int(value)


def _if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if header is None:
        return None
    match = _IF_MATCH.match(header)
    if not match or int(match.group(1)) < 1:
        raise ValidationError(
            'If-Match must name one version as W/"<versionId>".', field="If-Match"
        )
    return int(match.group(1))


def _etag(version_id: int) -> str:
    return f'W/"{version_id}"'


def _http_date(t: datetime) -> str:
    return format_datetime(t.astimezone(UTC), usegmt=True)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _version_headers(request: Request, stored: StoredResource) -> dict[str, str]:
    url = f"{_base_url(request)}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
    return {
        "ETag": _etag(stored.version_id),
        "Last-Modified": _http_date(stored.last_updated),
        "Content-Location": url,
    }


@contextmanager
def _logged_access(
    principal: Principal, action: str, resource_type: str, resource_id: str
) -> Iterator[None]:
    """Log who read what and the outcome (never content) until the audit log exists."""
    outcome = "ok"
    try:
        yield
    except BridgeError as exc:
        outcome = exc.code
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        access_log.info(
            "fhir %s",
            action,
            extra={
                "fields": {
                    "user": principal.user,
                    "action": action,
                    "resource_type": resource_type,
                    "resource_id": resource_id,
                    "outcome": outcome,
                }
            },
        )


def _ref(item: StoredResource | str) -> str:
    if isinstance(item, str):
        return item
    return f"{item.resource_type}/{item.id}/{item.version_id}"


def _audit_read(
    request: Request,
    principal: Principal,
    resources: ResourceRepository,
    interaction: str,
    items: list[StoredResource],
) -> None:
    """Audit a successful read in the request's transaction: no entry, no data."""
    person = next((i.person_id for i in items if i.person_id), None)
    _audit(request, principal, resources, "fhir.read", "permit", interaction, person, items)


def _audit_write(
    request: Request,
    principal: Principal,
    resources: ResourceRepository,
    interaction: str,
    person_id: str | None,
    items: list[StoredResource | str],
) -> None:
    """Audit a write in the same transaction as the write."""
    _audit(request, principal, resources, "fhir.write", "success", interaction, person_id, items)


def _audit(
    request: Request,
    principal: Principal,
    resources: ResourceRepository,
    action: str,
    outcome: str,
    interaction: str,
    person_id: str | None,
    items: list[StoredResource] | list[StoredResource | str],
) -> None:
    record = audit_record(
        request,
        principal,
        action=action,
        outcome=outcome,
        person_id=person_id,
        detail={"interaction": interaction, "resources": [_ref(i) for i in items]},
    )
    record_audit(request, resources.session, record)


async def read_body(request: Request) -> bytes:
    """Return the raw request body (the size limit is enforced while it streams in)."""
    return await request.body()


def _parse_resource(body: bytes, resource_type: str, resource_id: str) -> dict[str, Any]:
    if not body.strip():
        raise MalformedBodyError("The request body is empty; send the FHIR resource as JSON.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise MalformedBodyError("The request body must be a JSON object (a FHIR resource).")
    given_type = data.get("resourceType")
    if given_type != resource_type:
        raise MalformedBodyError(
            f"resourceType must be {resource_type!r} to match the URL"
            + (f", not {str(given_type)[:64]!r}." if given_type is not None else "."),
            field="resourceType",
        )
    given_id = data.get("id")
    if given_id != resource_id:
        raise MalformedBodyError(
            f"id must be {resource_id!r} to match the URL"
            + (f", not {str(given_id)[:64]!r}." if given_id is not None else "."),
            field=f"{resource_type}.id",
        )
    return data


# -- capabilities -------------------------------------------------------------------------


def _capability_resource(rtype: str) -> dict[str, Any]:
    """Return one type's entry: its interactions, search parameters and operations."""
    params = SEARCH_PARAMS.get(rtype, {})
    interactions = [*INTERACTIONS, "search-type"] if params else list(INTERACTIONS)
    entry: dict[str, Any] = {
        "type": rtype,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": False,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
    }
    if params:
        entry["searchParam"] = [
            {"name": name, "type": kind, "documentation": doc}
            for name, (kind, doc) in params.items()
        ]
    if rtype == "Patient":
        entry["operation"] = [{"name": "everything", "definition": EVERYTHING_DEFINITION}]
    return entry


def capability_statement(base_url: str, clock: Clock) -> dict[str, Any]:
    """Return the CapabilityStatement for the interactions this server implements."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir_instant(clock.now()),
        "publisher": "carebridge",
        "kind": "instance",
        "software": {"name": "carebridge", "version": __version__},
        "implementation": {"description": "carebridge FHIR API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth2 bearer JWTs (Authorization: Bearer <token>);"
                    " access is by role.",
                },
                "resource": [_capability_resource(rtype) for rtype in SUPPORTED_TYPES],
            }
        ],
    }


@router.get(
    "/metadata",
    summary="CapabilityStatement",
    response_class=FhirResponse,
    responses={200: {"content": {FHIR_JSON: {}}}, **_ERRORS_DOC},
)
def metadata(
    request: Request,
    _principal: Annotated[Principal, Depends(require("fhir.metadata"))],
) -> FhirResponse:
    """Return the server's CapabilityStatement."""
    return FhirResponse(capability_statement(_base_url(request), request.app.state.clock))


# -- read, vread, history -----------------------------------------------------------------


@router.get(
    "/{resource_type}/{resource_id}",
    summary="Read the current version",
    response_class=FhirResponse,
    responses=_RESOURCE_DOC,
)
def read(
    request: Request,
    resource_type: str,
    resource_id: str,
    # fhir.search, not fhir.read: social workers read single resources too, through the
    # consent gate (below); holders of fhir.read keep raw, audited reads.
    principal: Annotated[Principal, Depends(require("fhir.search"))],
    resources: Resources,
) -> Response:
    """Return the current version of a resource (410 when it was deleted)."""
    if not principal.has("fhir.read"):
        return _gated_read(request, resource_type, resource_id, principal, resources)
    with _logged_access(principal, "read", resource_type, resource_id):
        _check_target(resource_type, resource_id)
        stored = resources.read(resource_type, resource_id)
        _audit_read(request, principal, resources, "read", [stored])
    return FhirResponse(stored.content, headers=_version_headers(request, stored))


def _gated_read(
    request: Request,
    resource_type: str,
    resource_id: str,
    principal: Principal,
    resources: ResourceRepository,
) -> Response:
    """Read through the consent gate: withheld, unrelated or deleted reads as not found.

    The answer is the same 404 as for an id that never existed (same body, same headers),
    so it says nothing about what is stored. A refusal is returned rather than raised, so
    the audit entry the gate wrote (with every decision) is committed.
    """
    with _logged_access(principal, "read", resource_type, resource_id):
        _check_target(resource_type, resource_id)
        not_found = NotFoundError(f"{resource_type}/{resource_id} does not exist", field="id")
        try:
            stored = resources.read(resource_type, resource_id)
        except (NotFoundError, GoneError):
            raise not_found from None
        if stored.person_id is None:
            raise not_found  # nobody's record: nothing the gate could release
        gate: AccessGate = request.app.state.gate
        access = gate.open(
            resources.session,
            principal,
            stored.person_id,
            audit=audit_record(
                request,
                principal,
                action="fhir.read",
                outcome="permit",
                detail={"interaction": "read", "resource": f"{resource_type}/{resource_id}"},
            ),
            types=(resource_type,),
        )
        released = next((r for r in access.released if r.stored.id == resource_id), None)
        if released is None:
            return error_response(not_found, request.scope)
    headers = _version_headers(request, stored) | {"Cache-Control": "no-store"}
    return FhirResponse(released.content, headers=headers)


@router.get(
    "/{resource_type}/{resource_id}/_history/{version_id}",
    summary="Read one version (vread)",
    response_class=FhirResponse,
    responses=_RESOURCE_DOC,
)
def vread(
    request: Request,
    resource_type: str,
    resource_id: str,
    version_id: str,
    principal: Annotated[Principal, Depends(require("fhir.read"))],
    resources: Resources,
) -> FhirResponse:
    """Return one version of a resource from its history."""
    with _logged_access(principal, "vread", resource_type, resource_id):
        _check_target(resource_type, resource_id)
        stored = resources.vread(resource_type, resource_id, _version(version_id))
        _audit_read(request, principal, resources, "vread", [stored])
    return FhirResponse(stored.content, headers=_version_headers(request, stored))


@router.get(
    "/{resource_type}/{resource_id}/_history",
    summary="Instance history",
    response_class=FhirResponse,
    responses={
        200: {"description": "A history Bundle", "content": {FHIR_JSON: {}}},
        404: _RESOURCE_DOC[404],
        **_ERRORS_DOC,
    },
)
def history(
    request: Request,
    resource_type: str,
    resource_id: str,
    principal: Annotated[Principal, Depends(require("fhir.read"))],
    resources: Resources,
) -> FhirResponse:
    """Return every version of a resource, newest first, as a history Bundle."""
    with _logged_access(principal, "history", resource_type, resource_id):
        _check_target(resource_type, resource_id)
        versions = resources.history(resource_type, resource_id)
        _audit_read(request, principal, resources, "history", versions)
    return FhirResponse(_history_bundle(request, resource_type, resource_id, versions))


def _history_bundle(
    request: Request, resource_type: str, resource_id: str, versions: list[StoredResource]
) -> dict[str, Any]:
    base = _base_url(request)
    relative = f"{resource_type}/{resource_id}"
    # A version is a creation when it is the first or follows a deletion; walk oldest first.
    created: dict[int, bool] = {}
    previous_deleted = True
    for stored in reversed(versions):
        created[stored.version_id] = previous_deleted
        previous_deleted = stored.deleted
    entries: list[dict[str, Any]] = []
    for stored in versions:
        response = {
            "etag": _etag(stored.version_id),
            "lastModified": fhir_instant(stored.last_updated),
        }
        entry: dict[str, Any] = {"fullUrl": f"{base}/{relative}"}
        if stored.deleted:
            entry["request"] = {"method": "DELETE", "url": relative}
            entry["response"] = {"status": "204 No Content", **response}
        else:
            entry["resource"] = stored.content
            entry["request"] = {"method": "PUT", "url": relative}
            status = "201 Created" if created[stored.version_id] else "200 OK"
            entry["response"] = {"status": status, **response}
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(entries),
        "link": [{"relation": "self", "url": f"{base}/{relative}/_history"}],
        "entry": entries,
    }


# -- writes -------------------------------------------------------------------------------


@router.put(
    "/{resource_type}/{resource_id}",
    summary="Create or update a resource",
    response_class=FhirResponse,
    openapi_extra=_BODY_DOC,
    responses={
        200: {"description": "Updated (or unchanged)", "content": {FHIR_JSON: {}}},
        201: {"description": "Created", "content": {FHIR_JSON: {}}},
        400: {"description": "Malformed JSON, or type/id not matching the URL"},
        412: {"description": "If-Match names a version that is not current"},
        413: {"description": "Body larger than the configured limit"},
        422: {"description": "Not a valid FHIR resource; expression names the element"},
        **_ERRORS_DOC,
    },
)
def update(
    request: Request,
    resource_type: str,
    resource_id: str,
    # Order matters: FastAPI resolves dependencies in this order, so the caller is
    # authenticated before the body is read, and the body is read before a transaction
    # (and, on SQLite, the write lock) is taken.
    principal: Annotated[Principal, Depends(require("fhir.write"))],
    body: Annotated[bytes, Depends(read_body)],
    resources: Resources,
) -> FhirResponse:
    """Store a resource: 201 when created, 200 when updated or unchanged."""
    _check_target(resource_type, resource_id)
    if_match = _if_match(request)
    resource = _parse_resource(body, resource_type, resource_id)
    result = resources.put(resource, if_match=if_match)
    stored = result.stored
    _audit_write(request, principal, resources, "update", stored.person_id, [stored])
    headers = _version_headers(request, stored)
    headers["Location"] = headers["Content-Location"]
    return FhirResponse(stored.content, status_code=201 if result.created else 200, headers=headers)


@router.delete(
    "/{resource_type}/{resource_id}",
    summary="Delete a resource (logically; history is kept)",
    status_code=204,
    response_class=Response,
    responses={
        404: {"description": "The resource does not exist"},
        412: {"description": "If-Match names a version that is not current"},
        **_ERRORS_DOC,
    },
)
def delete(
    request: Request,
    resource_type: str,
    resource_id: str,
    principal: Annotated[Principal, Depends(require("fhir.write"))],
    resources: Resources,
) -> Response:
    """Mark a resource deleted: reads then answer 410 Gone, history stays."""
    _check_target(resource_type, resource_id)
    if resource_type in NEVER_DELETED:
        raise MethodNotAllowedError(NEVER_DELETED[resource_type], field="method")
    version = resources.delete(resource_type, resource_id, if_match=_if_match(request))
    _audit_write(
        request, principal, resources, "delete", None, [f"{resource_type}/{resource_id}/{version}"]
    )
    return Response(status_code=204, headers={"ETag": _etag(version)})

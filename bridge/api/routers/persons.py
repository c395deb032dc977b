"""The unified person view for social care users: search, view, break-glass.

Everything here reads person data through the access gate (``bridge.access``), which asks
the consent engine about every record and audits the decisions in the request's
transaction. A refusal (no care relationship) is a 403 that says why; it is audited too,
so it is returned as a response rather than raised (a raised error rolls the audit back).
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from bridge.access.gate import AccessGate, check_person_id, denied
from bridge.api.deps import DbSession, audit_record, json_body_doc, parse_body, require
from bridge.api.errors import error_response
from bridge.api.routers.fhir import read_body
from bridge.auth.principal import Principal
from bridge.view import build_view
from bridge.view.search import MAX_RESULTS, find_persons

router = APIRouter(prefix="/persons", tags=["persons"])
PersonId = Annotated[str, Path(description="the Person id (from /persons?q=)")]

_ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token"},
    403: {"description": "No permission, or no care relationship (reasons given)"},
    404: {"description": "No such person"},
}


class BreakGlassRequest(pydantic.BaseModel):
    """Emergency access: why it is needed, in words IG will review."""

    model_config = pydantic.ConfigDict(extra="forbid")
    reason: str = pydantic.Field(min_length=1, max_length=2000)


def _gate(request: Request) -> AccessGate:
    gate: AccessGate = request.app.state.gate
    return gate


def _source_names(gate: AccessGate) -> dict[str, str]:
    return {name: src.text for name, src in gate.engine.policy.sources.items()}


# -- search -----------------------------------------------------------------------------
@router.get("", summary="Find a person by NHS number, name or date of birth", responses=_ERRORS_DOC)
def search(
    request: Request,
    principal: Annotated[Principal, Depends(require("person.view"))],
    session: DbSession,
    q: Annotated[
        str,
        Query(
            min_length=2,
            max_length=200,
            description="an NHS number, a name (all words must match), a date of birth"
            " (YYYY-MM-DD or DD/MM/YYYY), or a name and a date of birth",
        ),
    ],
) -> JSONResponse:
    """Return the persons the caller may know exist (a care relationship, or break-glass).

    An NHS number is looked up directly; a name or date of birth is matched within the
    caller's caseload (persons whose records name the caller or their team). Each person
    returned is read through the access gate and audited.
    """
    hits = find_persons(
        session,
        _gate(request),
        principal,
        q,
        audit=audit_record(
            request, principal, action="person.read", outcome="permit", detail={"view": "search"}
        ),
        limit=MAX_RESULTS,
    )
    results: list[dict[str, Any]] = [
        {
            "id": h.id,
            "names": h.names,
            "birth_date": h.birth_date,
            "nhs_number": h.nhs_number,
            "view": f"/persons/{h.id}/view",
        }
        for h in hits
    ]
    return JSONResponse({"count": len(results), "persons": results})


# -- view -------------------------------------------------------------------------------
@router.get(
    "/{person_id}/view",
    summary="The unified view of one person, each item with why it is shown",
    responses=_ERRORS_DOC,
)
def view(
    request: Request,
    person_id: PersonId,
    principal: Annotated[Principal, Depends(require("person.view"))],
    session: DbSession,
) -> Response:
    """Return identity, alerts, involvement, hospital activity, health, carers, withheld."""
    check_person_id(person_id)
    gate = _gate(request)
    access = gate.decide(session, principal, person_id)
    if access.screen.permitted:
        social = frozenset(
            name for name, src in gate.engine.policy.sources.items() if not src.consent_required
        )
        document = build_view(access, source_names=_source_names(gate), social_care_sources=social)
        response: Response = JSONResponse(document, headers={"Cache-Control": "no-store"})
    else:
        response = error_response(denied(access.screen), request.scope)
    # Audited last, so the audit chain's lock is held only while the request commits;
    # if the entry cannot be written the request fails and the response is never sent.
    gate.record(
        session,
        access,
        audit_record(
            request,
            principal,
            action="person.read",
            outcome="permit",
            detail={"view": "person-view"},
        ),
    )
    return response


@router.post(
    "/{person_id}/break-glass",
    summary="Ask for emergency access to a person (audited, reviewed by IG)",
    status_code=201,
    responses={
        **_ERRORS_DOC,
        422: {"description": "The reason is too short, or the role may not break glass"},
    },
    openapi_extra=json_body_doc(BreakGlassRequest),
)
def break_glass(
    request: Request,
    person_id: PersonId,
    principal: Annotated[Principal, Depends(require("person.break_glass"))],
    session: DbSession,
    body: Annotated[bytes, Depends(read_body)],
) -> JSONResponse:
    """Start time-limited emergency access; the person view then shows the permitted subset."""
    check_person_id(person_id)
    given = parse_body(BreakGlassRequest, body)
    gate = _gate(request)
    row = gate.break_glass(
        session,
        principal,
        person_id,
        reason=given.reason,
        audit=audit_record(request, principal, action="break-glass", outcome="success"),
    )
    return JSONResponse(
        {
            "id": row.id,
            "person": person_id,
            "started_at": row.started_at.isoformat(),
            "expires_at": row.expires_at.isoformat(),
            "review_status": row.review_status,
            "view": f"/persons/{person_id}/view",
        },
        status_code=201,
    )

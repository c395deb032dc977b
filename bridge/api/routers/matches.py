"""The identity review queue: pairs of records that may be one human, and the decisions.

Integration engineers and IG officers (permission ``identity.review``) see each open pair
with its score and per-field evidence (which fields agreed and how strongly, never the
values) and accept or reject it. Every decision is audited as ``identity.link``.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import pydantic
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from bridge.api.context import request_id_of
from bridge.api.deps import DbSession, require
from bridge.api.routers.fhir import read_body
from bridge.audit.service import Actor, AuditLog
from bridge.auth.principal import Principal
from bridge.core.clock import Clock
from bridge.core.errors import MalformedBodyError, NotFoundError, ValidationError
from bridge.identity import service as identity_service
from bridge.identity.schemas import MatchDecision, MatchDecisionRead, MatchPage, MatchRead
from bridge.store.crypto import StoreCrypto

router = APIRouter(prefix="/admin/matches", tags=["identity"])
MAX_PAGE = 200

_ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token"},
    403: {"description": "The caller's roles lack the permission"},
}
_DECISION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": MatchDecision.model_json_schema()}},
    }
}


def _json(model: pydantic.BaseModel) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"))


@router.get("", summary="Open pairs awaiting review, with their evidence (oldest first)")
def list_matches(
    request: Request,
    _principal: Annotated[Principal, Depends(require("identity.review"))],
    session: DbSession,
    after: Annotated[int | None, Query(ge=0, description="page: pairs after this id")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> JSONResponse:
    """Return a page of open pairs and a link to the next page."""
    crypto: StoreCrypto = request.app.state.crypto
    rows, persons = identity_service.list_matches(
        session, crypto=crypto, after_id=after, limit=limit
    )
    page = MatchPage(
        matches=[MatchRead.from_row(r, persons) for r in rows],
        open=identity_service.count_open(session, crypto=crypto),
    )
    if len(rows) == limit:
        page.next = str(request.url.include_query_params(after=rows[-1].id))
    return _json(page)


def _parse(body: bytes) -> MatchDecision:
    if not body.strip():
        raise MalformedBodyError(
            'The request body is empty; send {"decision": "accept" or "reject", "note": "..."}.'
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"The request body is not valid JSON: {exc}.") from None
    try:
        return MatchDecision.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationError(f"{field}: {first['msg']}", field=field) from None


@router.post(
    "/{resource_id}",
    summary="Accept or reject a pair (accepting links the two records as one person)",
    openapi_extra=_DECISION_BODY,
    responses={
        200: {"description": "The decided pair and the Person it is now part of"},
        404: {"description": "No pair with that id"},
        412: {"description": "The pair was already decided"},
        **_ERRORS_DOC,
    },
)
def decide(
    request: Request,
    # Authorise before reading the body.
    principal: Annotated[Principal, Depends(require("identity.review"))],
    session: DbSession,
    body: Annotated[bytes, Depends(read_body)],
    resource_id: Annotated[str, Path(description="the pair's id from GET /admin/matches")],
) -> JSONResponse:
    """Record the decision, link (or not), and audit it in the same transaction."""
    if not resource_id.isascii() or not resource_id.isdigit() or len(resource_id) > 18:
        raise NotFoundError(f"there is no match candidate {resource_id[:32]!r}", field="id")
    wanted = _parse(body)
    app = request.app
    clock: Clock = app.state.clock
    audit: AuditLog = app.state.audit
    crypto: StoreCrypto = app.state.crypto
    outcome = identity_service.decide_match(
        session,
        candidate_id=int(resource_id),
        accept=wanted.decision == "accept",
        note=wanted.note,
        actor=Actor(
            principal.user,
            tuple(sorted(r.value for r in principal.roles)),
            org=principal.org,
            team=principal.team,
        ),
        crypto=crypto,
        clock=clock,
        audit=audit,
        request_id=request_id_of(request.scope),
        client_address=request.client.host if request.client else None,
    )
    persons = {
        p: person
        for p in (outcome.candidate.patient_a, outcome.candidate.patient_b)
        if (person := identity_service.person_of(session, patient_id=p, crypto=crypto))
    }
    return _json(
        MatchDecisionRead(
            match=MatchRead.from_row(outcome.candidate, persons),
            person=f"Person/{outcome.person_id}" if outcome.person_id else None,
            merge_id=outcome.merge_id,
        )
    )

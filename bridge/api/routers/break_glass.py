"""The IG review queue of emergency (break-glass) access (ig_officer only).

Every break-glass lands here as ``open``; an IG officer reads the worker's reason and
either accepts it or challenges it (with a note). Each review is audited as
``break-glass`` with the decision.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from bridge.api.deps import (
    DbSession,
    audit_record,
    json_body_doc,
    parse_body,
    record_audit,
    require,
)
from bridge.api.routers.fhir import read_body
from bridge.auth.principal import Principal
from bridge.core.clock import Clock
from bridge.core.errors import NotFoundError, ValidationError
from bridge.store.access import BreakGlassRepository, BreakGlassRow
from bridge.store.crypto import StoreCrypto

router = APIRouter(prefix="/audit/break-glass", tags=["audit"])
MAX_PAGE = 200


class BreakGlassReview(pydantic.BaseModel):
    """IG's decision on one emergency access."""

    model_config = pydantic.ConfigDict(extra="forbid")
    decision: Literal["accept", "challenge"]
    note: str | None = pydantic.Field(default=None, max_length=4000)


def _row_json(row: BreakGlassRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "user": row.user,
        "roles": list(row.roles),
        "org": row.org,
        "team": row.team,
        "person_id": row.person_id,
        "reason": row.reason,
        "started_at": row.started_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "audit_seq": row.audit_seq,
        "review_status": row.review_status,
        "reviewer": row.reviewer,
        "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None,
        "review_note": row.review_note,
        "audit": f"/audit?person={row.person_id}&user={row.user}&break_glass=true",
    }


def _repo(request: Request, session: Session) -> BreakGlassRepository:
    crypto: StoreCrypto = request.app.state.crypto
    return BreakGlassRepository(session, crypto=crypto)


def review_break_glass(
    request: Request,
    session: Session,
    principal: Principal,
    record_id: str,
    *,
    decision: str,
    note: str | None,
) -> BreakGlassRow:
    """Record IG's decision on one emergency access and audit it (API and pages alike)."""
    if decision not in ("accept", "challenge"):
        raise ValidationError("decision must be 'accept' or 'challenge'", field="decision")
    if decision == "challenge" and not (note and note.strip()):
        raise ValidationError("a challenge needs a note saying what to follow up", field="note")
    repo = _repo(request, session)
    current = repo.get(record_id, for_update=True)
    if current is None:
        raise NotFoundError(f"no break-glass record {record_id}", field="id")
    clock: Clock = request.app.state.clock
    status = "accepted" if decision == "accept" else "challenged"
    repo.review(record_id, status=status, reviewer=principal.user, note=note, at=clock.now())
    record_audit(
        request,
        session,
        audit_record(
            request,
            principal,
            action="break-glass",
            outcome="success",
            person_id=current.person_id,
            detail={"review": status, "break_glass_id": record_id, "of_user": current.user},
        ),
    )
    updated = repo.get(record_id)
    assert updated is not None
    return updated


@router.get("", summary="Emergency accesses awaiting (or after) IG review, oldest first")
def review_queue(
    request: Request,
    _principal: Annotated[Principal, Depends(require("audit.read"))],
    session: DbSession,
    status: Annotated[
        Literal["open", "accepted", "challenged", "all"], Query(description="review status")
    ] = "open",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> JSONResponse:
    """Return a page of break-glass records with the worker's reason and what they saw."""
    repo = _repo(request, session)
    wanted = None if status == "all" else status
    rows = repo.list(status=wanted, limit=limit, offset=offset)
    body: dict[str, Any] = {
        "status": status,
        "total": repo.count(status=wanted),
        "entries": [_row_json(r) for r in rows],
    }
    if len(rows) == limit:
        body["next"] = str(request.url.include_query_params(offset=offset + limit))
    return JSONResponse(body)


@router.post(
    "/{record_id}",
    summary="Accept or challenge an emergency access (audited)",
    openapi_extra=json_body_doc(BreakGlassReview),
)
def review(
    request: Request,
    record_id: Annotated[str, Path(max_length=64)],
    principal: Annotated[Principal, Depends(require("audit.read"))],
    session: DbSession,
    body: Annotated[bytes, Depends(read_body)],
) -> JSONResponse:
    """Record IG's decision; a challenged access is for follow-up with the worker's manager."""
    given = parse_body(BreakGlassReview, body)
    updated = review_break_glass(
        request, session, principal, record_id, decision=given.decision, note=given.note
    )
    return JSONResponse(_row_json(updated))

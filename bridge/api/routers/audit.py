"""Information governance: search and export the audit log (ig_officer only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from bridge.api.deps import DbSession, require
from bridge.api.errors import FHIR_JSON
from bridge.audit.export import to_audit_event, to_csv
from bridge.auth.principal import Principal
from bridge.core.clock import fhir_instant
from bridge.core.errors import ValidationError
from bridge.store.audit import AuditFilter, AuditRepository

router = APIRouter(prefix="/audit", tags=["audit"])
MAX_PAGE = 500
MAX_EXPORT = 100_000


Person = Annotated[str | None, Query(description="person id")]
User = Annotated[str | None, Query(description="user (token subject)")]
Action = Annotated[str | None, Query(description="action, e.g. person.read")]
Outcome = Annotated[str | None, Query(description="permit, deny, partial, success, failure")]
Since = Annotated[datetime | None, Query(description="from (inclusive), ISO 8601 with zone")]
Until = Annotated[datetime | None, Query(description="to (exclusive), ISO 8601 with zone")]
BreakGlass = Annotated[bool | None, Query(description="only break-glass (true) or not")]


def audit_filter(
    person: Person = None,
    user: User = None,
    action: Action = None,
    outcome: Outcome = None,
    since: Since = None,
    until: Until = None,
    break_glass: BreakGlass = None,
) -> AuditFilter:
    """Read the search filters from the query (one definition for search and export)."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(
                f"{name} needs a time zone, e.g. 2026-11-01T00:00:00Z", field=name
            )
    if since and until and until <= since:
        raise ValidationError("until must be after since", field="until")
    return AuditFilter(
        person_id=person,
        actor_user=user,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        break_glass=break_glass,
    )


Filter = Annotated[AuditFilter, Depends(audit_filter)]


def _entry_json(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "recorded_at": fhir_instant(row.recorded_at),
        "actor": {
            "user": row.actor_user,
            "roles": row.actor_roles.split(),
            "org": row.actor_org,
            "team": row.actor_team,
        },
        "action": row.action,
        "person_id": row.person_id,
        "outcome": row.outcome,
        "purpose": row.purpose,
        "break_glass": row.break_glass,
        "request_id": row.request_id,
        "client_address": row.client_address,
        "detail": row.detail,
        "hash": row.hash,
    }


@router.get("", summary="Search the audit log (newest first, paged)")
def search(
    request: Request,
    _principal: Annotated[Principal, Depends(require("audit.read"))],
    session: DbSession,
    flt: Filter,
    before: Annotated[int | None, Query(ge=1, description="page: entries before this seq")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> JSONResponse:
    """Return matching entries and a link to the next (older) page."""
    rows = AuditRepository(session).search(flt, limit=limit, before_seq=before)
    body: dict[str, Any] = {"entries": [_entry_json(r) for r in rows]}
    if len(rows) == limit:
        body["next"] = str(request.url.include_query_params(before=rows[-1].seq))
    return JSONResponse(body)


@router.get("/export", summary="Export matching entries as FHIR AuditEvents or CSV")
def export(
    _principal: Annotated[Principal, Depends(require("audit.read"))],
    session: DbSession,
    flt: Filter,
    format: Annotated[Literal["fhir", "csv"], Query(description="fhir or csv")] = "fhir",
) -> Any:
    """Export up to 100,000 entries (oldest first) for a subject access request or review."""
    rows = list(reversed(AuditRepository(session).search(flt, limit=MAX_EXPORT)))
    if format == "csv":
        return StreamingResponse(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="carebridge-audit.csv"'},
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "total": len(rows),
        "entry": [{"resource": to_audit_event(r)} for r in rows],
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)

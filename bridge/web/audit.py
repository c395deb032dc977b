"""Information governance pages: search and export the audit log, review emergency access.

The search reads ``AuditRepository`` with the API's own filter (``audit_filter``), the
exports are the API's export, and a review is ``review_break_glass``, the function the API
calls, so the review is audited the same way whichever way it is made.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from bridge.api.deps import DbSession
from bridge.api.routers import audit as audit_api
from bridge.api.routers.break_glass import review_break_glass
from bridge.auth.principal import Principal
from bridge.core.errors import ValidationError
from bridge.store.access import BreakGlassRepository
from bridge.store.audit import AuditFilter, AuditRepository
from bridge.store.crypto import StoreCrypto
from bridge.web.core import PREFIX, CsrfChecked, PageRoute, render, require_page

router = APIRouter(prefix="/audit", route_class=PageRoute, include_in_schema=False)
IgOfficer = Annotated[Principal, Depends(require_page("audit.read"))]
PAGE_SIZE = 25
FILTERS = ("person", "user", "action", "outcome", "since", "until")
OUTCOMES = ("permit", "partial", "deny", "success", "failure")


def _day(value: str, field: str, *, end: bool) -> datetime | None:
    """Return a form date (YYYY-MM-DD) as the start of that day, or of the next, in UTC."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ValidationError(f"{field}: enter a date as YYYY-MM-DD", field=field) from None
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def _filter(params: dict[str, str]) -> AuditFilter:
    since = _day(params["since"], "since", end=False)
    until = _day(params["until"], "until", end=True)
    if since and until and until <= since:
        raise ValidationError("until must be on or after since", field="until")
    return AuditFilter(
        person_id=params["person"] or None,
        actor_user=params["user"] or None,
        action=params["action"] or None,
        outcome=params["outcome"] or None,
        since=since,
        until=until,
    )


def _summary(row: Any) -> str:
    detail = row.detail or {}
    if isinstance(detail, str):  # stored as JSON text
        detail = json.loads(detail)
    parts = []
    if "view" in detail:
        parts.append(f"view: {detail['view']}")
    if "shown" in detail:
        parts.append(f"{detail['shown']} shown, {detail.get('withheld', 0)} withheld")
    if "review" in detail:
        parts.append(f"review: {detail['review']} of {detail.get('of_user')}")
    if "expires_at" in detail:
        parts.append(f"until {detail['expires_at']}")
    return "; ".join(parts)


@router.get("", summary="Search the audit log")
def search(
    request: Request,
    _principal: IgOfficer,
    session: DbSession,
    person: Annotated[str, Query(max_length=64)] = "",
    user: Annotated[str, Query(max_length=200)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Return a page of matching entries, newest first, with export links."""
    params = {
        "person": person.strip(),
        "user": user.strip(),
        "action": action.strip(),
        "outcome": outcome.strip(),
        "since": since.strip(),
        "until": until.strip(),
    }
    errors: dict[str, str] = {}
    rows: list[Any] = []
    try:
        flt = _filter(params)
    except ValidationError as exc:
        errors[exc.field or "since"] = exc.detail
    else:
        rows = list(AuditRepository(session).search(flt, limit=PAGE_SIZE + 1, before_seq=before))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    query = {k: v for k, v in params.items() if v}
    export = dict(query)
    if not errors:
        # The export takes instants; the form's days are whole UTC days.
        for key in ("since", "until"):
            when = _day(params[key], key, end=key == "until")
            if when is not None:
                export[key] = when.isoformat()
    return render(
        request,
        "audit.html",
        status_code=422 if errors else 200,
        principal=_principal,
        params=params,
        errors=errors,
        rows=rows,
        summary=_summary,
        outcomes=OUTCOMES,
        next_before=rows[-1].seq if more and rows else None,
        query=query,
        export=export,
        first_page=before is None,
    )


@router.get("/export", summary="Export the audit log")
def export(
    request: Request,
    principal: IgOfficer,
    session: DbSession,
    flt: Annotated[AuditFilter, Depends(audit_api.audit_filter)],
    format: Annotated[Literal["fhir", "csv"], Query()] = "csv",
) -> Response:
    """Download matching entries: the API's export (FHIR AuditEvents or CSV)."""
    response: Response = audit_api.export(principal, session, flt, format)
    response.headers["Cache-Control"] = "no-store"
    if format == "fhir":
        response.headers["Content-Disposition"] = 'attachment; filename="carebridge-audit.json"'
    return response


# -- the break-glass review queue -------------------------------------------------------
def _repo(request: Request, session: DbSession) -> BreakGlassRepository:
    crypto: StoreCrypto = request.app.state.crypto
    return BreakGlassRepository(session, crypto=crypto)


@router.get("/break-glass", summary="Emergency access reviews")
def review_queue(
    request: Request,
    principal: IgOfficer,
    session: DbSession,
    status: Annotated[Literal["open", "accepted", "challenged", "all"], Query()] = "open",
) -> Response:
    """List emergency accesses awaiting review (or reviewed), oldest first."""
    repo = _repo(request, session)
    wanted = None if status == "all" else status
    return render(
        request,
        "review_queue.html",
        principal=principal,
        status=status,
        rows=repo.list(status=wanted, limit=200),
        total=repo.count(status=wanted),
        errors={},
    )


@router.post("/break-glass/{record_id}", summary="Accept or challenge emergency access")
def review(
    request: Request,
    record_id: Annotated[str, Path(max_length=64)],
    principal: IgOfficer,
    session: DbSession,
    decision: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    _csrf: None = CsrfChecked,
) -> Response:
    """Record IG's decision (a challenge needs a note) and go back to the queue."""
    try:
        review_break_glass(
            request, session, principal, record_id, decision=decision, note=note.strip() or None
        )
    except ValidationError as exc:
        repo = _repo(request, session)
        return render(
            request,
            "review_queue.html",
            status_code=422,
            principal=principal,
            status="open",
            rows=repo.list(status="open", limit=200),
            total=repo.count(status="open"),
            errors={f"note-{record_id}": exc.detail},
        )
    return RedirectResponse(f"{PREFIX}/audit/break-glass?reviewed={record_id}", 303)

"""Social worker pages: find a person, the person page, emergency (break-glass) access.

They call what the API calls: ``find_persons`` and the access gate for reading (consent
checked record by record, one audit entry per request), ``build_view`` for the sections,
``AccessGate.break_glass`` for emergency access. A refusal is rendered, not raised, so
that its audit entry is committed with the request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from bridge.access.gate import AccessGate, check_person_id
from bridge.api.deps import DbSession, audit_record
from bridge.auth.principal import Principal
from bridge.core.errors import ValidationError
from bridge.view import build_view
from bridge.view.search import find_persons
from bridge.web.core import CsrfChecked, PageRoute, nice_date, render, require_page

router = APIRouter(prefix="/persons", route_class=PageRoute, include_in_schema=False)
PersonId = Annotated[str, Path(max_length=64)]
Viewer = Annotated[Principal, Depends(require_page("person.view"))]
Breaker = Annotated[Principal, Depends(require_page("person.break_glass"))]

# The view's sections, in the order a social worker reads them, with their headings.
INVOLVEMENT = (
    ("allocations", "Allocated workers"),
    ("key_professionals", "Key professionals"),
    ("open_referrals", "Open referrals"),
    ("episodes", "Episodes of care"),
    ("services", "Services"),
)
HEALTH = (
    ("conditions", "Conditions"),
    ("allergies", "Allergies"),
    ("observations", "Observations"),
    ("recent_contacts", "Recent contacts"),
)
SOCIAL_CARE = (
    ("assessments", "Assessments"),
    ("assessment_outcomes", "Assessment outcomes"),
    ("front_door", "Front door contacts"),
)
SECTION_NAMES = {
    "identity": "Identity",
    "alerts": "Alerts",
    "involvement": "Involvement",
    "hospital_activity": "Hospital activity",
    "health": "Health",
    "social_care": "Social care",
    "carers": "Carers",
    "other": "Other records",
}


_TITLE_KEYS = (
    "alert",
    "condition",
    "allergy",
    "observation",
    "what",
    "service",
    "title",
    "task",
    "type",
    "kind",
    "name",
)
_DATE_KEYS = ("period", "onset", "recorded", "when", "received")
_META_KEYS = frozenset({"record", "source", "last_updated", "why"})


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')}: {_words(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_words(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def describe(item: dict[str, Any]) -> dict[str, Any]:
    """Return a view item laid out for a page: title, date, details, source, why shown."""
    title_key = next((k for k in _TITLE_KEYS if item.get(k)), None)
    when: Any = None
    for key in _DATE_KEYS:
        value = item.get(key)
        if isinstance(value, dict):
            value = value.get("start")
        if value:
            when = value
            break
    rows = [
        (k.replace("_", " ").capitalize(), _words(v))
        for k, v in item.items()
        if k not in _META_KEYS and k != title_key and k not in _DATE_KEYS
    ]
    if isinstance(item.get("period"), dict) and item["period"].get("end"):
        rows.append(("Ended", nice_date(item["period"]["end"])))
    source = item.get("source") or {}
    return {
        "title": _words(item[title_key]) if title_key else item["record"].split("/")[0],
        "date": when,
        "rows": rows,
        "source": source.get("name") or source.get("system") or "carebridge",
        "updated": item.get("last_updated"),
        "why": item.get("why") or [],
        "record": item["record"],
    }


def _gate(request: Request) -> AccessGate:
    gate: AccessGate = request.app.state.gate
    return gate


@router.get("", summary="Find a person")
def search(
    request: Request,
    principal: Viewer,
    session: DbSession,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Search by NHS number, name or date of birth; list whom the caller may see."""
    query = (q or "").strip()
    errors: dict[str, str] = {}
    hits = None
    if q is not None and len(query) < 2:
        errors["q"] = "Enter a name, an NHS number or a date of birth (at least 2 characters)"
    elif query:
        try:
            hits = find_persons(
                session,
                _gate(request),
                principal,
                query,
                audit=audit_record(
                    request,
                    principal,
                    action="person.read",
                    outcome="permit",
                    detail={"view": "search", "channel": "web"},
                ),
            )
        except ValidationError as exc:
            errors["q"] = exc.detail.removeprefix("q: ").capitalize()
    status = 422 if errors else 200
    return render(
        request,
        "search.html",
        status_code=status,
        principal=principal,
        q=query,
        hits=hits,
        errors=errors,
    )


@router.get("/{person_id}", summary="The person page")
def person(
    request: Request, person_id: PersonId, principal: Viewer, session: DbSession
) -> Response:
    """Show the unified view, each item with source, date and why it is shown."""
    check_person_id(person_id)
    gate = _gate(request)
    access = gate.open(
        session,
        principal,
        person_id,
        audit=audit_record(
            request,
            principal,
            action="person.read",
            outcome="permit",
            detail={"view": "person-view", "channel": "web"},
        ),
    )
    if not access.screen.permitted:
        # Rendered, not raised: the refusal's audit entry must be committed.
        return render(
            request,
            "person_denied.html",
            status_code=403,
            principal=principal,
            person_id=person_id,
            reasons=[r.text for r in access.screen.reasons],
            can_break_glass=principal.has("person.break_glass"),
        )
    sources = gate.engine.policy.sources
    document = build_view(
        access,
        source_names={name: src.text for name, src in sources.items()},
        social_care_sources=frozenset(n for n, s in sources.items() if not s.consent_required),
    )
    return render(
        request,
        "person.html",
        principal=principal,
        view=document,
        name=_display_name(document),
        involvement=INVOLVEMENT,
        health=HEALTH,
        social_care=SOCIAL_CARE,
        section_names=SECTION_NAMES,
        describe=describe,
        audit_seq=access.audit_seq,
    )


def _display_name(document: dict[str, Any]) -> str:
    for record in document["identity"]["records"]:
        for name in record.get("names", ()):
            return str(name)
    return "This person"


def _break_glass_terms(request: Request) -> dict[str, Any]:
    """Return what emergency access allows, from the sharing policy, for the form."""
    policy = _gate(request).engine.policy
    rules = policy.break_glass
    minutes = int(rules.duration.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    lasts = (
        f"{hours} hour{'s' if hours != 1 else ''}" if hours and not rest else f"{minutes} minutes"
    )
    return {
        "lasts": lasts,
        "min_reason_length": rules.min_reason_length,
        "never_shown": policy.categories_text(rules.excluded_categories),
    }


@router.get("/{person_id}/break-glass", summary="Ask for emergency access")
def break_glass_form(
    request: Request, person_id: PersonId, principal: Breaker, session: DbSession
) -> Response:
    """Show the emergency access form: reason, scope, expiry and the IG review warning."""
    check_person_id(person_id)
    _gate(request).records(session, person_id)  # 404 for an unknown person
    return render(
        request,
        "break_glass.html",
        principal=principal,
        person_id=person_id,
        errors={},
        reason="",
        terms=_break_glass_terms(request),
    )


@router.post("/{person_id}/break-glass", summary="Start emergency access")
def break_glass(
    request: Request,
    person_id: PersonId,
    principal: Breaker,
    session: DbSession,
    reason: Annotated[str, Form(max_length=2000)] = "",
    _csrf: None = CsrfChecked,
) -> Response:
    """Start time-limited emergency access (audited, queued for IG) and open the person."""
    check_person_id(person_id)
    errors: dict[str, str] = {}
    if not reason.strip():
        errors["reason"] = "Enter why you need emergency access to this person's records"
    else:
        try:
            _gate(request).break_glass(
                session,
                principal,
                person_id,
                reason=reason,
                audit=audit_record(
                    request,
                    principal,
                    action="break-glass",
                    outcome="success",
                    detail={"channel": "web"},
                ),
            )
        except ValidationError as exc:
            errors["reason"] = exc.detail
    if errors:
        return render(
            request,
            "break_glass.html",
            status_code=422,
            principal=principal,
            person_id=person_id,
            errors=errors,
            reason=reason,
            terms=_break_glass_terms(request),
        )
    return RedirectResponse(f"{request.scope.get('root_path', '')}/web/persons/{person_id}", 303)

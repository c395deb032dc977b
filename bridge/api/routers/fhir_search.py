"""FHIR search (``GET /fhir/{type}``) and ``Patient/{id}/$everything``, filtered by consent.

Who gets what: holders of ``fhir.read`` (health professionals, IG, admin) get what is
stored, and every search is audited with the resources it returned. Everyone else with
``fhir.search`` (social workers) gets only what the access gate releases: each person's
records go through ``AccessGate.open`` (one audit entry with every decision), withheld
ones are dropped and summarised per reason in an OperationOutcome entry (counts and
plain words only), and ``total`` counts what was released, so no count reveals withheld
data. A summary depends only on who and which type were asked for, never on the other
parameters, so it cannot be used to probe the dates or status of withheld records.

Unknown or unsupported parameters answer 422 ``BRIDGE-0100`` naming the parameter (FHIR
"strict" handling, as every carebridge query parameter error does); ``Prefer:
handling=lenient`` ignores them instead and says so in the outcome entry.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from bridge.access.gate import AccessGate, PersonAccess
from bridge.api.deps import Resources, audit_record, record_audit, require
from bridge.api.errors import FHIR_JSON, error_response
from bridge.api.routers.fhir import (
    SEARCH_PARAMS,
    FhirResponse,
    _base_url,
    _check_target,
    _logged_access,
)
from bridge.auth.principal import Principal
from bridge.core import nhs_number
from bridge.core.errors import (
    GoneError,
    InvalidIdentifierError,
    NotFoundError,
    ValidationError,
)
from bridge.core.ids import is_fhir_id
from bridge.fhir.validate import model_class
from bridge.store.resources import REFERENCE_SYSTEM, ResourceRepository, StoredResource
from bridge.store.search_tokens import (
    BIRTHDATE_SYSTEM,
    FAMILY_SYSTEM,
    GIVEN_SYSTEM,
    NAME_SYSTEM,
    birth_date_tokens,
    name_words,
    patient_search_tokens,
)
from consent.record import parse_fhir_time

router = APIRouter(prefix="/fhir", tags=["FHIR"])

DEFAULT_COUNT = 50
MAX_COUNT = 500
# Result parameters every search takes (not search parameters: they shape the Bundle).
_RESULT_PARAMS = frozenset({"_count", "_page", "_summary", "_format"})
_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
# Parameters that find Patients through the blind index (at least one is needed).
_PATIENT_SELECTIVE = ("_id", "identifier", "name", "family", "given", "birthdate")
_NAME_SYSTEMS = {"name": NAME_SYSTEM, "family": FAMILY_SYSTEM, "given": GIVEN_SYSTEM}
_PATIENT_ELEMENTS = ("patient", "subject")
_SUPPORTED_PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le"})
_OTHER_PREFIXES = frozenset({"sa", "eb", "ap"})
_EVERYTHING_PARAMS = frozenset({"_count", "_page", "_format"})

_ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token (OperationOutcome)"},
    403: {"description": "The caller's roles lack the permission (OperationOutcome)"},
}


# -- parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """A half-open range of instants; None is open-ended."""

    lo: datetime | None
    hi: datetime | None


@dataclass(frozen=True)
class DateCriterion:
    """One date search value with its prefix (FHIR: the value's precision is a range)."""

    prefix: str
    lo: datetime
    hi: datetime
    text: str = ""

    def matches(self, t: DateRange) -> bool:
        """Say whether a target range satisfies this criterion (FHIR R4 date search)."""
        if self.prefix in ("eq", "ne"):
            inside = t.lo is not None and t.hi is not None and t.lo >= self.lo and t.hi <= self.hi
            return inside if self.prefix == "eq" else not inside
        if self.prefix == "ge":
            return t.hi is None or t.hi > self.lo
        if self.prefix == "gt":
            return t.hi is None or t.hi > self.hi
        if self.prefix == "le":
            return t.lo is None or t.lo < self.hi
        return t.lo is None or t.lo < self.lo  # lt


@dataclass
class Query:
    """A parsed search: each list holds one entry per occurrence (AND) of alternatives (OR)."""

    resource_type: str
    count: int = DEFAULT_COUNT
    offset: int = 0
    summary_count: bool = False
    ids: list[set[str]] = field(default_factory=list)
    identifiers: list[list[tuple[str, str]]] = field(default_factory=list)
    names: list[tuple[str, list[list[str]]]] = field(default_factory=list)
    birthdate: list[list[DateCriterion]] = field(default_factory=list)
    date: list[list[DateCriterion]] = field(default_factory=list)
    last_updated: list[list[DateCriterion]] = field(default_factory=list)
    status: list[set[str]] = field(default_factory=list)
    patients: list[set[str]] = field(default_factory=list)
    # (name, value) pairs understood, in order: the self and next links repeat them.
    kept: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def parameter_names(self) -> list[str]:
        """Return the search parameters used (names only: values may be names of people)."""
        return sorted({n for n, _ in self.kept if n not in _RESULT_PARAMS})

    def patient_ids(self) -> set[str]:
        """Return the patients every ``patient``/``subject`` occurrence allows."""
        found = set(self.patients[0])
        for more in self.patients[1:]:
            found &= more
        return found


def _bad(param: str, message: str) -> ValidationError:
    return ValidationError(f"{param}: {message}", field=param)


def _split(param: str, value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or not all(parts):
        raise _bad(param, "a value is required (and no empty value between commas).")
    return parts


def _date_criterion(param: str, raw: str, tz: tzinfo) -> DateCriterion:
    prefix, value = "eq", raw
    if raw[:2] in _SUPPORTED_PREFIXES | _OTHER_PREFIXES:
        prefix, value = raw[:2], raw[2:]
    # A '+' of a time zone offset arrives as a space unless the client encoded it (%2B).
    value = value.replace(" ", "+")
    if prefix in _OTHER_PREFIXES:
        raise _bad(param, f"the prefix '{prefix}' is not supported (use eq, ne, gt, ge, lt, le).")
    try:
        lo, hi = parse_fhir_time(value, tz), parse_fhir_time(value, tz, end=True)
    except ValueError:
        lo = hi = None
    if lo is None or hi is None or (param == "birthdate" and "T" in value):
        raise _bad(
            param,
            f"'{raw[:40]}' is not a date: use YYYY, YYYY-MM, YYYY-MM-DD"
            + ("" if param == "birthdate" else " or YYYY-MM-DDThh:mm:ss+zz:zz")
            + ", optionally after a prefix (ge2026-01-01).",
        )
    return DateCriterion(prefix, lo, hi, value)


def _patient_ref(param: str, value: str) -> str:
    pid = value.removeprefix("Patient/")
    if "/" in pid or not is_fhir_id(pid):
        raise _bad(param, "must be Patient/<id> (or the bare id).")
    return pid


def _identifier(value: str) -> tuple[str, str]:
    system, bar, ident = value.partition("|")
    if not bar or not system or not ident:
        raise _bad(
            "identifier",
            "must be system|value, e.g. https://fhir.nhs.uk/Id/nhs-number|9990000018"
            " (identifiers are indexed per system).",
        )
    if system == nhs_number.NHS_NUMBER_SYSTEM:
        problem = nhs_number.invalid_reason(ident)
        if problem:
            raise InvalidIdentifierError(
                f"identifier: the NHS number {problem}.", field="identifier"
            )
        ident = nhs_number.normalise(ident)
    return system, ident


def _count(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise _bad("_count", f"must be a whole number from 1 to {MAX_COUNT}.")
    return min(int(value), MAX_COUNT)  # FHIR: a server may return fewer than asked for


def encode_page(offset: int) -> str:
    """Return the opaque page token for an offset into the (filtered) result list."""
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _decode_page(value: str) -> int:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("o") or not text[1:].isdigit() or len(text) > 12:
        raise _bad("_page", "is not a page token from this server's next link.")
    return int(text[1:])


def _lenient(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(
        p.strip().lower().replace(" ", "") == "handling=lenient"
        for p in prefer.replace(",", ";").split(";")
    )


def parse_query(
    resource_type: str,
    items: Sequence[tuple[str, str]],
    *,
    tz: tzinfo,
    lenient: bool = False,
    allowed: Iterable[str] | None = None,
) -> Query:
    """Parse search parameters; ``ValidationError`` naming the parameter when one is wrong."""
    known = set(SEARCH_PARAMS[resource_type] if allowed is None else allowed)
    known |= _RESULT_PARAMS if allowed is None else set()
    q = Query(resource_type)
    for name, value in items:
        base, colon, modifier = name.partition(":")
        if base not in known or colon:
            if lenient:
                q.ignored.append(name)
                continue
            where = resource_type if allowed is None else f"{resource_type}/$everything"
            what = (
                f"the modifier ':{modifier}' is not supported"
                if colon and base in known
                else f"is not a parameter carebridge supports for {where}"
            )
            supported = ", ".join(sorted(known))
            raise _bad(name, f"{what} (supported: {supported}).")
        q.kept.append((name, value))
        if base == "_count":
            q.count = _count(value)
        elif base == "_page":
            q.offset = _decode_page(value)
        elif base == "_summary":
            if value not in ("count", "false"):
                raise _bad("_summary", "only 'count' (or 'false') is supported.")
            q.summary_count = value == "count"
        elif base == "_format":
            if value not in _JSON_FORMATS:
                raise _bad("_format", "only json is supported.")
        elif base == "_id":
            ids = _split(base, value)
            if not all(is_fhir_id(i) for i in ids):
                raise _bad("_id", "ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'.")
            q.ids.append(set(ids))
        elif base == "identifier":
            q.identifiers.append([_identifier(v) for v in _split(base, value)])
        elif base in _NAME_SYSTEMS:
            alternatives = [name_words(v) for v in _split(base, value)]
            if not all(alternatives):
                raise _bad(base, "needs at least one letter or digit.")
            q.names.append((base, alternatives))
        elif base in ("birthdate", "date", "_lastUpdated"):
            criteria = [_date_criterion(base, v, tz) for v in _split(base, value)]
            {"birthdate": q.birthdate, "date": q.date, "_lastUpdated": q.last_updated}[base].append(
                criteria
            )
        elif base == "status":
            q.status.append(set(_split(base, value)))
        elif base in ("patient", "subject"):
            q.patients.append({_patient_ref(base, v) for v in _split(base, value)})
    if allowed is None and resource_type == "Patient":
        if not any(n in _PATIENT_SELECTIVE for n, _ in q.kept):
            raise _bad(
                "Patient",
                "a Patient search needs at least one of " + ", ".join(_PATIENT_SELECTIVE) + ".",
            )
        if not (q.ids or q.identifiers or q.names) and not any(
            all(c.prefix == "eq" for c in occurrence) for occurrence in q.birthdate
        ):
            raise _bad(
                "birthdate",
                "a birthdate range (ge, le…) needs another parameter too (identifier, name,"
                " family, given or _id): the index holds exact dates only.",
            )
    elif allowed is None and not q.patients:
        raise _bad(
            "patient",
            f"a {resource_type} search needs patient=Patient/<id> (or subject=Patient/<id>).",
        )
    return q


# -- matching -----------------------------------------------------------------------------


def _range(value: Any, tz: tzinfo) -> DateRange | None:
    try:
        if isinstance(value, str):
            return DateRange(parse_fhir_time(value, tz), parse_fhir_time(value, tz, end=True))
        if isinstance(value, dict):
            start, end = value.get("start"), value.get("end")
            if not isinstance(start, str) and not isinstance(end, str):
                return None
            return DateRange(
                parse_fhir_time(start, tz) if isinstance(start, str) else None,
                parse_fhir_time(end, tz, end=True) if isinstance(end, str) else None,
            )
    except ValueError:
        return None
    return None


def natural_date(content: dict[str, Any], tz: tzinfo) -> DateRange | None:
    """Return the date a clinical resource is about (what ``date`` searches), if it has one."""
    rtype = content.get("resourceType")
    if rtype in ("Encounter", "EpisodeOfCare", "CarePlan", "Flag"):
        return _range(content.get("period"), tz)
    if rtype == "Condition":
        for key in ("onsetDateTime", "onsetPeriod"):
            if key in content:
                return _range(content[key], tz)
        return _range(content.get("recordedDate"), tz)
    if rtype == "ServiceRequest":
        return _range(content.get("authoredOn"), tz)
    if rtype == "Observation":
        for key in ("effectiveDateTime", "effectivePeriod", "effectiveInstant"):
            if key in content:
                return _range(content[key], tz)
    return None


def status_of(content: dict[str, Any]) -> set[str]:
    """Return the status codes ``status`` matches (Condition: its clinical status)."""
    if content.get("resourceType") == "Condition":
        concept = content.get("clinicalStatus") or {}
        return {str(c["code"]) for c in concept.get("coding") or () if c.get("code")}
    return {str(content["status"])} if content.get("status") else set()


def patient_of(content: dict[str, Any]) -> str | None:
    """Return the id of the Patient a resource is about (its patient or subject)."""
    for element in _PATIENT_ELEMENTS:
        ref = content.get(element)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            if ref["reference"].startswith("Patient/"):
                return str(ref["reference"]).removeprefix("Patient/")
    return None


def _updated(stored: StoredResource) -> DateRange:
    at = stored.last_updated
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return DateRange(at, at + timedelta(milliseconds=1))


def _any_date(occurrences: list[list[DateCriterion]], target: DateRange | None) -> bool:
    if not occurrences:
        return True
    if target is None:
        return False
    return all(any(c.matches(target) for c in alts) for alts in occurrences)


def matches(q: Query, stored: StoredResource, content: dict[str, Any], tz: tzinfo) -> bool:
    """Say whether a resource (as the caller would see it) satisfies every criterion."""
    if any(stored.id not in ids for ids in q.ids):
        return False
    if not _any_date(q.last_updated, _updated(stored)):
        return False
    if q.patients and patient_of(content) not in q.patient_ids():
        return False
    if any(not (status_of(content) & wanted) for wanted in q.status):
        return False
    if q.date and not _any_date(q.date, natural_date(content, tz)):
        return False
    if q.identifiers:
        held = {
            (str(i.get("system")), str(i.get("value")))
            for i in content.get("identifier") or ()
            if isinstance(i, dict)
        }
        if any(not (held & set(alts)) for alts in q.identifiers):
            return False
    if q.names:
        tokens = set(patient_search_tokens(content))
        for param, alternatives in q.names:
            system = _NAME_SYSTEMS[param]
            if not any(all((system, w) in tokens for w in words) for words in alternatives):
                return False
    if q.birthdate:
        born = content.get("birthDate")
        return _any_date(q.birthdate, _range(born, tz) if isinstance(born, str) else None)
    return True


# -- finding candidates -------------------------------------------------------------------


def _patient_candidates(repo: ResourceRepository, q: Query) -> list[StoredResource]:
    """Return the Patients the indexed parameters allow (before any other criterion)."""
    sets: list[set[str]] = [set(ids) for ids in q.ids]

    def lookup(system: str, value: str) -> set[str]:
        return set(repo.ids_by_identifier(system, value, resource_type="Patient"))

    for alts in q.identifiers:
        sets.append(set().union(*(lookup(s, v) for s, v in alts)))
    for param, alternatives in q.names:
        system = _NAME_SYSTEMS[param]
        found: set[str] = set()
        for words in alternatives:
            per_word = [lookup(system, w) for w in words]
            found |= set.intersection(*per_word)
        sets.append(found)
    for criteria in q.birthdate:
        if all(c.prefix == "eq" for c in criteria):
            found = set()
            for c in criteria:
                # The most precise form: a date indexes its year, month and day.
                found |= lookup(BIRTHDATE_SYSTEM, birth_date_tokens(c.text)[-1])
            sets.append(found)
    ids = set.intersection(*sets) if sets else set()
    return sorted(repo.read_many("Patient", ids).values(), key=lambda s: s.id)


def _clinical_candidates(repo: ResourceRepository, q: Query) -> list[StoredResource]:
    found = [
        s for pid in sorted(q.patient_ids()) for s in repo.find_by_patient(q.resource_type, pid)
    ]
    return sorted(found, key=lambda s: s.id)


# -- bundles ------------------------------------------------------------------------------


@dataclass
class Result:
    """What a search found for the caller, before paging."""

    matches: list[tuple[StoredResource, dict[str, Any]]] = field(default_factory=list)
    withheld: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add_withheld(self, access: PersonAccess, keep: Callable[[StoredResource], bool]) -> None:
        """Count the withheld records of ``access`` that ``keep`` selects, per first reason."""
        for w in access.withheld:
            if keep(w.stored):
                first = w.decision.reasons[0]
                self.withheld[(first.code, first.text)] += 1


def withheld_outcome(
    withheld: Counter[tuple[str, str]], ignored: Sequence[str]
) -> dict[str, Any] | None:
    """Return the OperationOutcome summarising withheld records and ignored parameters."""
    issues: list[dict[str, Any]] = []
    for (code, text), n in sorted(withheld.items(), key=lambda kv: (-kv[1], kv[0])):
        noun = "record" if n == 1 else "records"
        issues.append(
            {
                "severity": "information",
                "code": "suppressed",
                "details": {
                    "coding": [{"system": "urn:carebridge:consent-reason", "code": code}],
                    "text": text,
                },
                "diagnostics": f"{n} {noun}: {text}",
            }
        )
    for name in ignored:
        issues.append(
            {
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": f"Parameter '{name}' is not supported and was ignored.",
                "expression": [name],
            }
        )
    return {"resourceType": "OperationOutcome", "issue": issues} if issues else None


def _url(base: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    query = urlencode(list(params))
    return f"{base}/{path}" + (f"?{query}" if query else "")


def searchset(
    request: Request,
    path: str,
    q: Query,
    result: Result,
) -> tuple[dict[str, Any], list[StoredResource]]:
    """Return the searchset Bundle for one page, and the resources it holds."""
    base = _base_url(request)
    total = len(result.matches)
    page = [] if q.summary_count else result.matches[q.offset : q.offset + q.count]
    kept = [(n, v) for n, v in q.kept if n not in ("_page", "_count")]
    counted = [*kept, ("_count", str(q.count))]

    def at(offset: int) -> list[tuple[str, str]]:
        return counted if offset == 0 else [*counted, ("_page", encode_page(offset))]

    links = [{"relation": "self", "url": _url(base, path, at(q.offset))}]
    if not q.summary_count and q.offset + q.count < total:
        links.append({"relation": "next", "url": _url(base, path, at(q.offset + q.count))})
    if not q.summary_count and q.offset > 0:
        links.append(
            {"relation": "previous", "url": _url(base, path, at(max(0, q.offset - q.count)))}
        )
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{stored.resource_type}/{stored.id}",
            "resource": content,
            "search": {"mode": "match"},
        }
        for stored, content in page
    ]
    outcome = withheld_outcome(result.withheld, q.ignored)
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle, [s for s, _ in page]


def _audit_raw(
    request: Request,
    principal: Principal,
    session: Session,
    interaction: str,
    q: Query,
    total: int,
    returned: list[StoredResource],
) -> None:
    """Audit a raw (fhir.read) search: one entry per person returned, listing the resources."""
    by_person: dict[str | None, list[str]] = {}
    for s in returned:
        by_person.setdefault(s.person_id, []).append(f"{s.resource_type}/{s.id}/{s.version_id}")
    for person_id, refs in sorted(by_person.items(), key=lambda kv: kv[0] or "") or [(None, [])]:
        record_audit(
            request,
            session,
            audit_record(
                request,
                principal,
                action="fhir.read",
                outcome="permit",
                person_id=person_id,
                detail={
                    "interaction": interaction,
                    "type": q.resource_type,
                    "parameters": q.parameter_names,
                    "total": total,
                    "resources": refs,
                },
            ),
        )


def _gate(request: Request) -> AccessGate:
    gate: AccessGate = request.app.state.gate
    return gate


def _gated_audit(request: Request, principal: Principal, interaction: str, q: Query) -> Any:
    return audit_record(
        request,
        principal,
        action="fhir.read",
        outcome="permit",
        detail={
            "interaction": interaction,
            "type": q.resource_type,
            "parameters": q.parameter_names,
        },
    )


# -- search -------------------------------------------------------------------------------


def _search_gated_patients(
    request: Request, principal: Principal, repo: ResourceRepository, q: Query
) -> Result:
    gate = _gate(request)
    tz = gate.policy_tz
    candidates = _patient_candidates(repo, q)
    by_person: dict[str, set[str]] = {}
    for p in candidates:
        if p.person_id:  # a Patient linked to no Person is not something the gate can release
            by_person.setdefault(p.person_id, set()).add(p.id)
    result = Result()
    at = gate.clock.now()
    for person_id in sorted(by_person):
        records = repo.find_by_person(person_id)
        if not gate.screen(repo.session, principal, person_id, at=at, records=records).permitted:
            continue  # not a person the caller may know exists: not listed, nothing read
        access = gate.open(
            repo.session,
            principal,
            person_id,
            audit=_gated_audit(request, principal, "search-type", q),
            types=("Patient",),
            records=records,
            at=at,
        )
        found = [
            (r.stored, r.content)
            for r in access.released
            if r.stored.id in by_person[person_id] and matches(q, r.stored, r.content, tz)
        ]
        if found:
            result.matches.extend(found)
            result.add_withheld(access, lambda s: s.resource_type == "Patient")
    result.matches.sort(key=lambda m: m[0].id)
    return result


def _search_gated_clinical(
    request: Request, principal: Principal, repo: ResourceRepository, q: Query
) -> Result:
    gate = _gate(request)
    tz = gate.policy_tz
    result = Result()
    at = gate.clock.now()
    patients = repo.read_many("Patient", q.patient_ids())
    by_person: dict[str, set[str]] = {}
    for p in patients.values():
        if p.person_id:
            by_person.setdefault(p.person_id, set()).add(p.id)
    for person_id in sorted(by_person):
        access = gate.open(
            repo.session,
            principal,
            person_id,
            audit=_gated_audit(request, principal, "search-type", q),
            types=(q.resource_type, "Patient"),
            at=at,
        )
        # Only patients the caller may see themselves: otherwise this search would say
        # that a Patient that reads as not found exists.
        visible = {
            r.stored.id for r in access.of_type("Patient") if r.stored.id in by_person[person_id]
        }
        if not visible:
            continue
        result.matches.extend(
            (r.stored, r.content)
            for r in access.of_type(q.resource_type)
            if patient_of(r.content) in visible and matches(q, r.stored, r.content, tz)
        )
        result.add_withheld(
            access,
            lambda s, visible=visible: (
                s.resource_type == q.resource_type and patient_of(s.content or {}) in visible
            ),
        )
    result.matches.sort(key=lambda m: m[0].id)
    return result


def _search_raw(request: Request, repo: ResourceRepository, q: Query) -> Result:
    tz = _gate(request).policy_tz
    if q.resource_type == "Patient":
        candidates = _patient_candidates(repo, q)
    else:
        candidates = _clinical_candidates(repo, q)
    return Result(
        matches=[(s, s.content) for s in candidates if s.content and matches(q, s, s.content, tz)]
    )


@router.get(
    "/{resource_type}",
    summary="Search (searchset Bundle; filtered by consent for social care users)",
    response_class=FhirResponse,
    responses={
        200: {"description": "A searchset Bundle", "content": {FHIR_JSON: {}}},
        404: {"description": "Unknown resource type (OperationOutcome)"},
        422: {"description": "An unknown or invalid parameter, named (OperationOutcome)"},
        **_ERRORS_DOC,
    },
)
def search(
    request: Request,
    resource_type: str,
    principal: Annotated[Principal, Depends(require("fhir.search"))],
    resources: Resources,
) -> Response:
    """Search one resource type; what a social worker may not see is left out and summarised."""
    model_class(resource_type)  # 404 not-supported for types carebridge does not hold
    if resource_type not in SEARCH_PARAMS:
        raise ValidationError(
            f"Search is not supported for {resource_type}; searchable types: "
            + ", ".join(sorted(SEARCH_PARAMS))
            + ".",
            field="resourceType",
        )
    gate = _gate(request)
    q = parse_query(
        resource_type,
        request.query_params.multi_items(),
        tz=gate.policy_tz,
        lenient=_lenient(request),
    )
    with _logged_access(principal, "search-type", resource_type, ""):
        raw = principal.has("fhir.read")
        if raw:
            result = _search_raw(request, resources, q)
        elif resource_type == "Patient":
            result = _search_gated_patients(request, principal, resources, q)
        else:
            result = _search_gated_clinical(request, principal, resources, q)
        bundle, returned = searchset(request, resource_type, q, result)
        if raw:
            _audit_raw(
                request,
                principal,
                resources.session,
                "search-type",
                q,
                len(result.matches),
                returned,
            )
    headers = {} if raw else {"Cache-Control": "no-store"}
    return FhirResponse(bundle, headers=headers)


# -- $everything --------------------------------------------------------------------------


@router.get(
    "/Patient/{resource_id}/$everything",
    summary="Everything about the patient's person the caller may see (searchset Bundle)",
    response_class=FhirResponse,
    responses={
        200: {"description": "A searchset Bundle", "content": {FHIR_JSON: {}}},
        404: {"description": "No such patient, or none the caller may see (OperationOutcome)"},
        410: {"description": "The patient was deleted (fhir.read callers; OperationOutcome)"},
        **_ERRORS_DOC,
    },
)
def everything(
    request: Request,
    resource_id: str,
    principal: Annotated[Principal, Depends(require("fhir.search"))],
    resources: Resources,
) -> Response:
    """Return the person's records the caller may see, withheld ones summarised."""
    _check_target("Patient", resource_id)
    gate = _gate(request)
    q = parse_query(
        "Patient",
        request.query_params.multi_items(),
        tz=gate.policy_tz,
        lenient=_lenient(request),
        allowed=_EVERYTHING_PARAMS,
    )
    path = f"Patient/{resource_id}/$everything"
    with _logged_access(principal, "everything", "Patient", resource_id):
        if principal.has("fhir.read"):
            patient = resources.read("Patient", resource_id)  # 404 / 410 as a read
            if patient.person_id:
                found = resources.find_by_person(patient.person_id)
            else:
                found = [
                    patient,
                    *resources.find_by_identifier(REFERENCE_SYSTEM, f"Patient/{resource_id}"),
                ]
            result = Result(
                matches=sorted(
                    ((s, s.content) for s in found if s.content is not None),
                    key=lambda m: (m[0].resource_type, m[0].id),
                )
            )
            bundle, returned = searchset(request, path, q, result)
            _audit_raw(
                request,
                principal,
                resources.session,
                "everything",
                q,
                len(result.matches),
                returned,
            )
            return FhirResponse(bundle)
        not_found = NotFoundError(f"Patient/{resource_id} does not exist", field="id")
        try:
            patient = resources.read("Patient", resource_id)
        except (NotFoundError, GoneError):
            raise not_found from None
        if not patient.person_id:
            raise not_found
        access = gate.open(
            resources.session,
            principal,
            patient.person_id,
            audit=audit_record(
                request,
                principal,
                action="fhir.read",
                outcome="permit",
                detail={"interaction": "everything", "patient": f"Patient/{resource_id}"},
            ),
        )
        if not any(r.stored.id == resource_id for r in access.of_type("Patient")):
            # Refused or withheld: exactly like a missing patient, and returned (not
            # raised) so that the audit entry of the refusal is committed.
            return error_response(not_found, request.scope)
        result = Result(
            matches=sorted(
                ((r.stored, r.content) for r in access.released),
                key=lambda m: (m[0].resource_type, m[0].id),
            )
        )
        result.add_withheld(access, lambda _s: True)
        bundle, _ = searchset(request, path, q, result)
    return FhirResponse(bundle, headers={"Cache-Control": "no-store"})

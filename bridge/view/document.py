"""Build the unified person view from a ``PersonAccess`` (pure: what the gate released).

The document has one section per question a social worker asks: who is this (identity),
what must I know before visiting (alerts), who is involved (involvement), have they been
in hospital (hospital_activity), what health information is relevant (health), what has
social care done (social_care), who cares for them (carers), and what is withheld
(counts and reasons per section, never content). Every item names the record it comes
from, its source system, when that record last changed, and why it is shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bridge.access.gate import PersonAccess, Released

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
INTERPRETER = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
EXPECTED_DISCHARGE = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"
)
INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC", "EMER", "SS", "PRENC"})
ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
OPEN_REQUEST = frozenset({"draft", "active", "on-hold"})
OPEN_EPISODE = frozenset({"planned", "waiting", "active", "onhold"})
RECENT_ITEMS = 10

# Where each kind of record belongs; withheld counts are given per section.
SECTION_OF: dict[str, str] = {
    "Patient": "identity",
    "Flag": "alerts",
    "CareTeam": "involvement",
    "ServiceRequest": "involvement",
    "EpisodeOfCare": "involvement",
    "CarePlan": "involvement",
    "Task": "social_care",
    "Encounter": "hospital_activity",
    "Condition": "health",
    "AllergyIntolerance": "health",
    "Observation": "health",
    "MedicationStatement": "health",
    "RelatedPerson": "carers",
}


# -- small readers ----------------------------------------------------------------------
def text_of(concept: Any) -> str | None:
    """Return the words of a CodeableConcept (text, else the first display, else code)."""
    if isinstance(concept, list):
        for item in concept:
            found = text_of(item)
            if found:
                return found
        return None
    if not isinstance(concept, Mapping):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if coding.get("display"):
            return str(coding["display"])
    for coding in concept.get("coding") or ():
        if coding.get("code"):
            return str(coding["code"])
    return None


def _code(concept: Any) -> str | None:
    if isinstance(concept, list):
        concept = concept[0] if concept else None
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or ():
            if coding.get("code"):
                return str(coding["code"])
    return None


def _ref_display(ref: Any) -> str | None:
    if not isinstance(ref, Mapping):
        return None
    if ref.get("display"):
        return str(ref["display"])
    ident = ref.get("identifier") or {}
    return str(ident["value"]) if ident.get("value") else None


def _name(name: Mapping[str, Any]) -> str:
    if name.get("text"):
        return str(name["text"])
    parts = [*(name.get("prefix") or ()), *(name.get("given") or ()), name.get("family") or ""]
    return " ".join(p for p in parts if p)


def _address(addr: Mapping[str, Any]) -> str:
    parts = [*(addr.get("line") or ()), addr.get("city"), addr.get("postalCode")]
    return ", ".join(str(p) for p in parts if p)


def _period(period: Any) -> dict[str, str]:
    if not isinstance(period, Mapping):
        return {}
    return {k: str(period[k]) for k in ("start", "end") if period.get(k)}


def _extension(content: Mapping[str, Any], url: str) -> Any:
    for ext in content.get("extension") or ():
        if ext.get("url") == url:
            for key, value in ext.items():
                if key.startswith("value"):
                    return value
    return None


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, [], {}, "")}


# -- summaries per resource type --------------------------------------------------------
def patient_summary(c: Mapping[str, Any]) -> dict[str, Any]:
    nhs = next(
        (i.get("value") for i in c.get("identifier") or () if i.get("system") == NHS_NUMBER),
        None,
    )
    language = next((text_of(comm.get("language")) for comm in c.get("communication") or ()), None)
    return _clean(
        {
            "nhs_number": nhs,
            "names": [_name(n) for n in c.get("name") or ()],
            "birth_date": c.get("birthDate"),
            "gender": c.get("gender"),
            "address": [_address(a) for a in c.get("address") or ()],
            "telecom": [
                _clean({"system": t.get("system"), "value": t.get("value"), "use": t.get("use")})
                for t in c.get("telecom") or ()
            ],
            "gp_practice": next(
                (_ref_display(g) for g in c.get("generalPractitioner") or ()), None
            ),
            "language": language,
            "interpreter_required": _extension(c, INTERPRETER),
            "deceased": c.get("deceasedDateTime") or c.get("deceasedBoolean"),
        }
    )


def _flag(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "alert": text_of(c.get("code")),
            "category": text_of(c.get("category")),
            "status": c.get("status"),
            "period": _period(c.get("period")),
            "recorded_by": _ref_display(c.get("author")),
        }
    )


def _care_team(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "name": c.get("name"),
            "status": c.get("status"),
            "period": _period(c.get("period")),
            "members": [
                _clean(
                    {
                        "name": _ref_display(p.get("member")),
                        "role": text_of(p.get("role")),
                        "organisation": _ref_display(p.get("onBehalfOf")),
                    }
                )
                for p in c.get("participant") or ()
            ],
            "telecom": [t.get("value") for t in c.get("telecom") or () if t.get("value")],
        }
    )


def _service_request(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "what": text_of(c.get("code")) or text_of(c.get("category")),
            "reason": text_of(c.get("reasonCode")),
            "status": c.get("status"),
            "priority": c.get("priority"),
            "received": c.get("authoredOn"),
            "team": next((_ref_display(p) for p in c.get("performer") or ()), None),
        }
    )


def _episode(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "service": text_of(c.get("type")),
            "status": c.get("status"),
            "period": _period(c.get("period")),
            "organisation": _ref_display(c.get("managingOrganization")),
        }
    )


def _care_plan(c: Mapping[str, Any]) -> dict[str, Any]:
    activities = [a.get("detail") or {} for a in c.get("activity") or ()]
    return _clean(
        {
            "title": c.get("title"),
            "status": c.get("status"),
            "period": _period(c.get("period")),
            "services": [
                _clean(
                    {
                        "service": text_of(d.get("code")),
                        "provider": next((_ref_display(p) for p in d.get("performer") or ()), None),
                        "status": d.get("status"),
                    }
                )
                for d in activities
            ],
        }
    )


def _encounter(c: Mapping[str, Any]) -> dict[str, Any]:
    hosp = c.get("hospitalization") or {}
    return _clean(
        {
            "kind": text_of(c.get("class")) if isinstance(c.get("class"), Mapping) else None,
            "type": text_of(c.get("type")),
            "status": c.get("status"),
            "period": _period(c.get("period")),
            "location": next(
                (_ref_display(loc.get("location")) for loc in c.get("location") or ()), None
            ),
            "admitted_from": text_of(hosp.get("admitSource")),
            "discharged_to": text_of(hosp.get("dischargeDisposition")),
            "expected_discharge": _extension(c, EXPECTED_DISCHARGE),
        }
    )


def _condition(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "condition": text_of(c.get("code")),
            "status": _code(c.get("clinicalStatus")),
            "category": text_of(c.get("category")),
            "onset": c.get("onsetDateTime") or c.get("onsetString"),
            "recorded": c.get("recordedDate"),
        }
    )


def _allergy(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "allergy": text_of(c.get("code")),
            "status": _code(c.get("clinicalStatus")),
            "reactions": [
                text_of(m) for r in c.get("reaction") or () for m in r.get("manifestation") or ()
            ],
            "criticality": c.get("criticality"),
        }
    )


def _observation(c: Mapping[str, Any]) -> dict[str, Any]:
    value: Any = text_of(c.get("valueCodeableConcept")) or c.get("valueString")
    if value is None and isinstance(c.get("valueQuantity"), Mapping):
        q = c["valueQuantity"]
        value = f"{q.get('value')} {q.get('unit') or ''}".strip()
    return _clean(
        {
            "observation": text_of(c.get("code")),
            "value": value,
            "when": c.get("effectiveDateTime"),
            "status": c.get("status"),
        }
    )


def _related(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "name": next((_name(n) for n in c.get("name") or ()), None),
            "relationship": [text_of(r) for r in c.get("relationship") or ()],
            "telecom": [t.get("value") for t in c.get("telecom") or () if t.get("value")],
            "address": [_address(a) for a in c.get("address") or ()],
        }
    )


def _task(c: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "task": text_of(c.get("code")),
            "outcome": text_of(c.get("businessStatus")),
            "status": c.get("status"),
            "when": c.get("authoredOn"),
        }
    )


SUMMARISERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "Patient": patient_summary,
    "Flag": _flag,
    "CareTeam": _care_team,
    "ServiceRequest": _service_request,
    "EpisodeOfCare": _episode,
    "CarePlan": _care_plan,
    "Encounter": _encounter,
    "Condition": _condition,
    "AllergyIntolerance": _allergy,
    "Observation": _observation,
    "RelatedPerson": _related,
    "Task": _task,
}


def summarise(item: Released, source_names: Mapping[str, str]) -> dict[str, Any]:
    """Return one released record as a view item: its summary, where from, and why shown."""
    stored = item.stored
    system = stored.source.system if stored.source else None
    summary = SUMMARISERS.get(stored.resource_type, lambda _c: {})(item.content)
    return {
        **summary,
        "record": f"{stored.resource_type}/{stored.id}",
        "source": _clean({"system": system, "name": source_names.get(system or "")}),
        "last_updated": stored.last_updated.isoformat(),
        "why": [r.text for r in item.decision.reasons],
    }


# -- the document -----------------------------------------------------------------------
def _newest_first(
    items: Iterable[Released], key: Callable[[Mapping[str, Any]], Any]
) -> list[Released]:
    return sorted(items, key=lambda r: str(key(r.content) or ""), reverse=True)


def _start(c: Mapping[str, Any]) -> Any:
    return (c.get("period") or {}).get("start")


def _is_allocation(item: Released) -> bool:
    return bool(item.stored.source and item.stored.source.kind == "allocation")


def build_view(
    access: PersonAccess,
    *,
    source_names: Mapping[str, str],
    social_care_sources: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Return the person view document for what the gate released.

    ``social_care_sources`` are the source systems whose encounters and observations are
    social care's own (assessments and their outcomes) rather than health information.
    """

    def items(rs: Iterable[Released]) -> list[dict[str, Any]]:
        return [summarise(r, source_names) for r in rs]

    rel = access.released
    by_type: dict[str, list[Released]] = {}
    for r in rel:
        by_type.setdefault(r.stored.resource_type, []).append(r)

    def of(rtype: str) -> list[Released]:
        return by_type.get(rtype, [])

    def social(r: Released) -> bool:
        return bool(r.stored.source and r.stored.source.system in social_care_sources)

    encounters = [e for e in of("Encounter") if not social(e)]
    stays = [e for e in encounters if _code(e.content.get("class")) in INPATIENT_CLASSES]
    contacts = [e for e in encounters if e not in stays]
    observations = [o for o in of("Observation") if not social(o)]
    care_teams = of("CareTeam")
    withheld: Counter[tuple[str, str, str]] = Counter()
    for w in access.withheld:
        section = SECTION_OF.get(w.stored.resource_type, "other")
        first = w.decision.reasons[0]
        withheld[(section, first.code, first.text)] += 1
    patients = of("Patient")
    nhs_numbers = sorted(
        {n for p in patients if (n := patient_summary(p.content).get("nhs_number"))}
    )
    return {
        "person": access.person_id,
        "generated_at": access.at.isoformat(),
        "access": {
            "decision": access.screen.effect.value,
            "why": [r.text for r in access.screen.reasons],
            "break_glass": (
                {
                    "id": access.break_glass.id,
                    "expires_at": access.break_glass.expires_at.isoformat(),
                }
                if access.break_glass
                else None
            ),
            "restricted_demographics": access.restricted_demographics,
            "relationships": [
                _clean(
                    {
                        "kind": r.kind.value,
                        "user": r.user,
                        "team": r.team,
                        "since": r.period.start.date().isoformat() if r.period.start else None,
                    }
                )
                for r in access.relationships
            ],
        },
        "identity": {
            "nhs_number": nhs_numbers[0] if nhs_numbers else None,
            "records": items(patients),
        },
        "alerts": items(
            _newest_first((f for f in of("Flag") if f.content.get("status") == "active"), _start)
        ),
        "involvement": {
            "allocations": items(
                c for c in care_teams if _is_allocation(c) and c.content.get("status") == "active"
            ),
            "key_professionals": items(
                c
                for c in care_teams
                if not _is_allocation(c) and c.content.get("status") != "inactive"
            ),
            "open_referrals": items(
                _newest_first(
                    (s for s in of("ServiceRequest") if s.content.get("status") in OPEN_REQUEST),
                    lambda c: c.get("authoredOn"),
                )
            ),
            "episodes": items(
                e for e in of("EpisodeOfCare") if e.content.get("status") in OPEN_EPISODE
            ),
            "services": items(
                p for p in of("CarePlan") if p.content.get("status") in ("active", "on-hold")
            ),
        },
        "hospital_activity": items(_newest_first(stays, _start)[:RECENT_ITEMS]),
        "health": {
            "conditions": items(
                c
                for c in of("Condition")
                if _code(c.content.get("clinicalStatus")) in ACTIVE_CONDITION
            ),
            "allergies": items(of("AllergyIntolerance")),
            "observations": items(
                _newest_first(observations, lambda c: c.get("effectiveDateTime"))[:RECENT_ITEMS]
            ),
            "recent_contacts": items(_newest_first(contacts, _start)[:RECENT_ITEMS]),
        },
        "social_care": {
            "assessments": items(
                _newest_first((e for e in of("Encounter") if social(e)), _start)[:RECENT_ITEMS]
            ),
            "assessment_outcomes": items(
                _newest_first(
                    (o for o in of("Observation") if social(o)),
                    lambda c: c.get("effectiveDateTime"),
                )[:RECENT_ITEMS]
            ),
            "front_door": items(
                _newest_first(of("Task"), lambda c: c.get("authoredOn"))[:RECENT_ITEMS]
            ),
        },
        "carers": items(of("RelatedPerson")),
        "withheld": [
            {"section": section, "reason": code, "text": text, "count": n}
            for (section, code, text), n in sorted(withheld.items())
        ],
    }

"""Adult social care (ASC) case-system export rows for one person."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from bridge.synth import vocab as v
from bridge.synth.chs import ChsHistory
from bridge.synth.output import Sink
from bridge.synth.population import (
    Demographics,
    Identifiers,
    Person,
    Pools,
    Worker,
    local_time,
    weighted,
)
from bridge.synth.timefmt import iso

PERSONS = "asc/persons.jsonl"
CONTACTS = "asc/contacts.jsonl"
ASSESSMENTS = "asc/assessments.jsonl"
SERVICES = "asc/services.jsonl"
ALLOCATIONS = "asc/allocations.jsonl"
CARERS = "asc/carers.jsonl"
CONSENTS = "asc/consents.jsonl"
SAFEGUARDING = "asc/safeguarding.jsonl"

_GENDER = {"M": "Male", "F": "Female", "U": "Not known"}
_TRIAGE = tuple((code, w) for code, _, w in v.TRIAGE_OUTCOMES)
_TRIAGE_TEXT = {code: text for code, text, _ in v.TRIAGE_OUTCOMES}
_ASSESSMENT_TYPES = tuple((code, w) for code, _, w in v.ASSESSMENT_TYPES)
_ASSESSMENT_TEXT = {code: text for code, text, _ in v.ASSESSMENT_TYPES}
_SG = tuple((code, w) for code, _, w in v.SAFEGUARDING_CATEGORIES)
_SG_TEXT = {code: text for code, text, _ in v.SAFEGUARDING_CATEGORIES}
_TEAM_NAME = dict(v.ASC_TEAMS)
# Locality team by postcode district: the borough is split into four patches.
_LOCALITY = {
    district: ("T02", "T03", "T04", "T05")[i % 4] for i, (district, _) in enumerate(v.DISTRICTS)
}
_ACCOMMODATION = (
    ("Owner occupier or shared ownership scheme", 0.45),
    (
        "Tenant - local authority, arms length management organisation, registered social "
        "landlord or housing association",
        0.3,
    ),
    ("Tenant - private landlord", 0.1),
    ("Settled mainstream housing with family or friends", 0.1),
    ("Supported accommodation, supported lodgings or supported group home", 0.05),
)


class _Ctx:
    """Per-person state shared by the row writers."""

    def __init__(
        self,
        person: Person,
        rng: random.Random,
        ids: Identifiers,
        pools: Pools,
        sink: Sink,
        as_of: date,
    ) -> None:
        self.person = person
        self.rng = rng
        self.ids = ids
        self.pools = pools
        self.sink = sink
        self.as_of = as_of
        self.end = datetime(as_of.year, as_of.month, as_of.day)
        self.pid = person.asc_person_id or ""

    def when(self, day: date) -> datetime:
        """Return a working-hours time on ``day`` (clamped to before ``as_of``)."""
        return local_time(min(day, self.as_of - timedelta(days=1)), self.rng)

    def stamp(self, day: date) -> str:
        """Return an ``updated_at`` on ``day`` or just before ``as_of``."""
        return iso(self.when(day))

    def worker(self, team_id: str) -> Worker:
        """Return a worker from a team."""
        return self.rng.choice(self.pools.asc_workers[team_id])

    def home_team(self) -> str:
        """Return the long-term team for the person's needs and address."""
        profile = self.person.profile
        if profile == "adult_learning":
            return "T08"
        if profile in ("adult_mental", "older_mental") and self.rng.random() < 0.7:
            return "T09"
        return _LOCALITY.get(self.person.truth.address.postcode.split()[0], "T02")


def emit_asc(
    person: Person,
    demo: Demographics,
    rng: random.Random,
    ids: Identifiers,
    pools: Pools,
    sink: Sink,
    as_of: date,
    chs: ChsHistory | None,
) -> None:
    """Write everything the social care case system holds about one person."""
    person.asc_person_id = ids.asc_person_id()
    ctx = _Ctx(person, rng, ids, pools, sink, as_of)
    contacts = _plan_contacts(ctx, chs)
    _person_row(ctx, demo, contacts[0][0])
    for day, route, source in contacts:
        _contact_and_followup(ctx, day, route, source)
    if person.carer and rng.random() < 0.85:
        _carer(ctx, contacts[0][0])
    if rng.random() < 0.65:
        _consents(ctx, contacts[0][0])
    if rng.random() < 0.02:
        # Concerns also arrive outside a front-door contact (e.g. from a provider).
        span = (as_of - contacts[0][0]).days - 1
        _safeguarding(
            ctx, contacts[0][0] + timedelta(days=rng.randint(0, max(0, span))), "provider"
        )


def _plan_contacts(ctx: _Ctx, chs: ChsHistory | None) -> list[tuple[date, str, str]]:
    """Return (day, route of access, source) of each front-door contact, oldest first."""
    rng = ctx.rng
    out: list[tuple[date, str, str]] = []
    if chs:
        for day, disposition in chs.discharges:
            # Discharges home or to a care home from a community bed often need social care.
            if disposition in ("19", "65", "85") and rng.random() < 0.5:
                contact_day = day - timedelta(days=rng.randint(0, 5))
                out.append((contact_day, v.ROUTE_DISCHARGE, "hospital"))
    more = int(weighted(rng, (("1", 0.6), ("2", 0.3), ("3", 0.1)))) - (1 if out else 0)
    if out and rng.random() < 0.5:
        more = 0
    for _ in range(more):
        day = ctx.as_of - timedelta(days=rng.randint(5, 1095))
        route = weighted(rng, v.ROUTES_OTHER)
        source = weighted(rng, v.ASC_CONTACT_SOURCES)
        if route == v.ROUTE_DIVERSION:
            source = "community_health"
        elif route == "Planned Entry (Transition)":
            # Transition from children's services happens at 18-25 only; treat others as
            # ordinary community contacts.
            route = route if ctx.person.age_group == "18-64" else "Community / Other route"
        out.append((day, route, source))
    out.sort()
    return out


def _person_row(ctx: _Ctx, demo: Demographics, first_contact: date) -> None:
    p = ctx.person
    rng = ctx.rng
    nhs = None
    if p.asc_has_nhs:
        nhs = p.nhs_number
        if rng.random() < 0.08:
            # Typed from a letter: spaces as printed (still valid once normalised).
            nhs = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    a = demo.address
    accommodation = weighted(rng, _ACCOMMODATION)
    updated = first_contact + timedelta(days=rng.randint(0, 60))
    ctx.sink.write(
        PERSONS,
        {
            "person_id": ctx.pid,
            "nhs_number": nhs,
            "title": demo.title,
            "given_name": demo.given,
            "middle_names": demo.middle,
            "family_name": demo.family,
            "preferred_name": demo.preferred if rng.random() < 0.5 else None,
            "date_of_birth": demo.dob.isoformat(),
            "gender": _GENDER[demo.sex],
            "address_line_1": a.line1,
            "address_line_2": a.locality,
            "town": a.town,
            "postcode": a.postcode,
            "sensitive_address": rng.random() < 0.005,
            "phone": demo.phone_home,
            "mobile": demo.phone_mobile,
            "preferred_language": p.language,
            "interpreter_required": p.interpreter,
            "ethnicity_code": p.ethnicity[0],
            "accessibility_needs": list(p.accessibility),
            "gp_practice_code": p.practice.ods_code,
            "gp_practice_name": p.practice.name,
            "client_type": "Service User",
            "primary_support_reason": p.support_reason,
            "accommodation_status": accommodation,
            "has_unpaid_carer": p.carer is not None,
            "updated_at": ctx.stamp(updated),
        },
    )


def _contact_and_followup(ctx: _Ctx, day: date, route: str, source: str) -> None:
    """Write a front-door contact and what its triage outcome led to."""
    rng = ctx.rng
    outcome = weighted(rng, _TRIAGE)
    if route == v.ROUTE_DISCHARGE and outcome in ("TO01", "TO02", "TO06"):
        outcome = "TO04"
    if outcome == "TO05":
        reason = rng.choice(v.ASC_SAFEGUARDING_REASONS)
    elif route == v.ROUTE_DISCHARGE:
        reason = "Hospital discharge support needed"
    else:
        reason = rng.choice(v.ASC_CONTACT_REASONS)
    urgency = (
        "urgent"
        if route == v.ROUTE_DISCHARGE or outcome == "TO05"
        else weighted(rng, (("routine", 0.8), ("urgent", 0.2)))
    )
    received = ctx.when(day)
    outcome_day = min(day + timedelta(days=rng.randint(0, 5)), ctx.as_of - timedelta(days=1))
    front = ctx.worker("T07" if route == v.ROUTE_DISCHARGE else "T01")
    ctx.sink.write(
        CONTACTS,
        {
            "contact_id": ctx.ids.record_id("ACT"),
            "person_id": ctx.pid,
            "contact_time": iso(received),
            "source": source,
            "route_of_access": route,
            "reason": reason,
            "urgency": urgency,
            "triage_outcome_code": outcome,
            "triage_outcome": _TRIAGE_TEXT[outcome],
            "outcome_date": outcome_day.isoformat(),
            "team_id": front.team_id,
            "team_name": front.team_name,
            "worker_id": front.worker_id,
            "updated_at": iso(max(ctx.when(outcome_day), received + timedelta(minutes=30))),
        },
    )
    _allocation(ctx, front, day, outcome_day)
    if outcome == "TO03":
        _assessment(ctx, outcome_day)
    elif outcome == "TO04":
        end = _reablement(ctx, outcome_day)
        if end and rng.random() < 0.4:
            _assessment(ctx, end)
    elif outcome == "TO05":
        _safeguarding(ctx, day, source)


def _allocation(ctx: _Ctx, worker: Worker, start: date, end: date | None) -> None:
    """Write an allocation of the person to a worker and team (end None while open)."""
    if end is not None and end >= ctx.as_of:
        end = None
    ctx.sink.write(
        ALLOCATIONS,
        {
            "allocation_id": ctx.ids.record_id("ALC"),
            "person_id": ctx.pid,
            "worker_id": worker.worker_id,
            "worker_name": worker.name,
            "worker_role": worker.role,
            "team_id": worker.team_id,
            "team_name": worker.team_name,
            "start_date": start.isoformat(),
            "end_date": end.isoformat() if end else None,
            "updated_at": ctx.stamp(end or start),
        },
    )


def _assessment(ctx: _Ctx, after: date) -> None:
    """Write an assessment and, when needs are eligible, the services arranged."""
    rng = ctx.rng
    start = after + timedelta(days=rng.randint(1, 21))
    if start >= ctx.as_of:
        return
    kind = weighted(rng, _ASSESSMENT_TYPES)
    end: date | None = start + timedelta(days=rng.randint(0, 28))
    if end is not None and end >= ctx.as_of:
        end = None
    worker = ctx.worker(ctx.home_team())
    eligible: bool | None = None
    outcomes: list[str] = []
    result = None
    if end is not None and kind != "AT03":
        eligible = rng.random() < 0.75
        if eligible:
            k = rng.randint(2, 5)
            pool = v.ELIGIBILITY_OUTCOMES[:9]  # caring for a child is rare in this caseload
            outcomes = sorted(rng.sample(pool, k), key=v.ELIGIBILITY_OUTCOMES.index)
            result = weighted(rng, v.ASSESSMENT_OUTCOMES_ELIGIBLE)
        else:
            result = weighted(rng, v.ASSESSMENT_OUTCOMES_NOT_ELIGIBLE)
    elif end is not None:
        result = weighted(rng, (("Full cost", 0.3), ("Contributes to cost", 0.55), ("Nil", 0.15)))
    ctx.sink.write(
        ASSESSMENTS,
        {
            "assessment_id": ctx.ids.record_id("ASM"),
            "person_id": ctx.pid,
            "assessment_type_code": kind,
            "assessment_type": _ASSESSMENT_TEXT[kind],
            "method": weighted(rng, v.ASSESSMENT_METHODS),
            "start_date": start.isoformat(),
            "end_date": end.isoformat() if end else None,
            "status": "completed" if end else "in_progress",
            "eligible_needs_identified": eligible,
            "eligible_outcomes": outcomes,
            "outcome": result,
            "worker_id": worker.worker_id,
            "updated_at": ctx.stamp(end or start),
        },
    )
    _allocation(ctx, worker, start, None if eligible else end)
    if eligible and end and result:
        _long_term_service(ctx, end, result)


def _reablement(ctx: _Ctx, after: date) -> date | None:
    """Write up to six weeks of reablement; return its end (None if still running)."""
    rng = ctx.rng
    start = after + timedelta(days=rng.randint(0, 7))
    if start >= ctx.as_of:
        return None
    end: date | None = start + timedelta(days=rng.randint(7, 42))
    if end is not None and end >= ctx.as_of:
        end = None
    _service(ctx, "SV01", start, end, units=rng.choice((5, 7, 10, 14)))
    _allocation(ctx, ctx.worker("T06"), start, end)
    return end


def _long_term_service(ctx: _Ctx, after: date, outcome: str) -> None:
    rng = ctx.rng
    if outcome.endswith("Residential Care"):
        code = "SV04"
    elif outcome.endswith("Nursing Care"):
        code = "SV05"
    elif outcome.endswith("ST-Max"):
        _reablement(ctx, after)
        return
    else:
        code = weighted(rng, (("SV02", 0.65), ("SV06", 0.2), ("SV03", 0.15)))
    start = after + timedelta(days=rng.randint(1, 14))
    if start >= ctx.as_of:
        return
    end = None
    if rng.random() < 0.2:
        end = start + timedelta(days=rng.randint(28, 400))
    units = {
        "SV02": rng.choice((3.5, 5.25, 7.0, 10.5, 14.0, 21.0, 28.0)),
        "SV03": rng.choice((1, 2, 3)),
        "SV06": rng.choice((6, 10, 15, 20)),
    }.get(code, 1)
    _service(ctx, code, start, end, units=units)
    if code == "SV02" and rng.random() < 0.1 and (ctx.as_of - start).days > 60:
        # A respite stay to give the carer a break.
        s = start + timedelta(days=rng.randint(30, (ctx.as_of - start).days - 1))
        _service(ctx, "SV07", s, s + timedelta(days=rng.choice((7, 14))), units=1)


def _service(ctx: _Ctx, code: str, start: date, end: date | None, *, units: float) -> None:
    """Write one service episode."""
    rng = ctx.rng
    if end is not None and end >= ctx.as_of:
        end = None
    service_type, component, mechanism, unit_type, frequency = v.SERVICES[code]
    cost = {
        "SV01": None,  # in-house reablement is free for up to six weeks
        "SV02": rng.choice((21.5, 22.8, 24.1)),
        "SV03": rng.choice((55.0, 62.5)),
        "SV04": rng.choice((765.0, 812.0, 890.0)),
        "SV05": rng.choice((950.0, 1040.0, 1125.0)),
        "SV06": rng.choice((120.0, 185.0, 260.0)),
        "SV07": rng.choice((812.0, 890.0)),
    }[code]
    provider = rng.choice(v.PROVIDERS[code])
    ctx.sink.write(
        SERVICES,
        {
            "service_id": ctx.ids.record_id("SRV"),
            "person_id": ctx.pid,
            "service_code": code,
            "service_type": service_type,
            "service_component": component,
            "delivery_mechanism": mechanism,
            "provider_name": provider,
            "provider_cqc_location_id": None if code in ("SV01", "SV06") else _cqc_id(provider),
            "start_date": start.isoformat(),
            "end_date": end.isoformat() if end else None,
            "planned_units_per_week": units,
            "unit_type": unit_type,
            "unit_cost": cost,
            "cost_frequency": frequency if cost is not None else None,
            "status": "ended" if end else "active",
            "updated_at": ctx.stamp(end or start),
        },
    )


def _cqc_id(provider: str) -> str:
    """Return a stable CQC-location-like id for a provider name (invented, ``1-`` + digits)."""
    n = 0
    for ch in provider:
        n = (n * 131 + ord(ch)) % 10_000_000_000
    return f"1-{n:010d}"


def _carer(ctx: _Ctx, first_contact: date) -> None:
    rng = ctx.rng
    c = ctx.person.carer
    assert c is not None
    status = weighted(
        rng, (("completed", 0.45), ("offered", 0.15), ("declined", 0.2), ("not_offered", 0.2))
    )
    day = None
    if status != "not_offered":
        day = min(first_contact + timedelta(days=rng.randint(1, 60)), ctx.as_of - timedelta(days=1))
    ctx.sink.write(
        CARERS,
        {
            "carer_id": ctx.ids.record_id("CAR"),
            "person_id": ctx.pid,
            "carer_given_name": c.given,
            "carer_family_name": c.family,
            "relationship": c.relationship,
            "lives_with": c.lives_with,
            "phone": c.phone,
            "hours_caring_per_week": c.hours_per_week,
            "carer_assessment_offered": status != "not_offered",
            "carer_assessment_status": status,
            "carer_assessment_date": day.isoformat() if day else None,
            "updated_at": ctx.stamp(day or first_contact),
        },
    )


def _consents(ctx: _Ctx, first_contact: date) -> None:
    """Write the person's decision(s) about sharing between social care and health."""
    rng = ctx.rng
    day = min(first_contact + timedelta(days=rng.randint(0, 30)), ctx.as_of - timedelta(days=1))
    worker = ctx.worker(ctx.home_team())
    memory = ctx.person.profile in ("older_memory", "adult_learning")
    capacity = "best_interests_decision" if memory and rng.random() < 0.5 else "has_capacity"
    u = rng.random()
    decision = "refused" if u < 0.1 else "agreed"
    withdraw = decision == "agreed" and u > 0.92 and (ctx.as_of - day).days > 14
    excluded: list[str] = []
    if decision == "agreed" and rng.random() < 0.15:
        excluded = sorted(rng.sample(v.EXCLUDABLE_CATEGORIES, rng.choice((1, 1, 2))))
    first_id = ctx.ids.record_id("CNS")
    ctx.sink.write(CONSENTS, _consent_row(ctx, first_id, decision, day, excluded, capacity, worker))
    if withdraw:
        later = day + timedelta(days=rng.randint(7, (ctx.as_of - day).days - 1))
        row = _consent_row(
            ctx, ctx.ids.record_id("CNS"), "withdrawn", later, [], "has_capacity", worker
        )
        row["supersedes_consent_id"] = first_id
        ctx.sink.write(CONSENTS, row)


def _consent_row(
    ctx: _Ctx,
    consent_id: str,
    decision: str,
    day: date,
    excluded: list[str],
    capacity: str,
    worker: Worker,
) -> dict[str, Any]:
    scope = weighted(ctx.rng, v.CONSENT_SCOPES)
    until = date(day.year + 1, day.month, min(day.day, 28)) if decision == "agreed" else None
    return {
        "consent_id": consent_id,
        "person_id": ctx.pid,
        "decision": decision,
        "purpose": "direct_care",
        "scope": scope,
        "excluded_categories": excluded,
        "decision_date": day.isoformat(),
        "valid_until": until.isoformat() if until else None,
        "capacity": capacity,
        "recorded_by_worker_id": worker.worker_id,
        "recorded_by_name": worker.name,
        "supersedes_consent_id": None,
        "updated_at": ctx.stamp(day),
    }


def _safeguarding(ctx: _Ctx, day: date, source: str) -> None:
    """Write a safeguarding concern (sensitive: restricted to safeguarding roles)."""
    rng = ctx.rng
    code = weighted(rng, _SG)
    if ctx.rng.random() < 0.2 and ctx.person.profile == "adult_substance":
        code = "SG02"
    age = (ctx.as_of - day).days
    if age < 5:
        status, outcome, closed = "concern_received", None, None
    else:
        # Enquiries rarely stay open beyond a few months.
        s42 = 0.3 if age < 180 else 0.02
        status = weighted(rng, (("closed", 1 - s42), ("section_42_enquiry", s42)))
        outcome, closed = None, None
        if status == "closed":
            closed = day + timedelta(days=rng.randint(1, min(age - 1, 90)))
            outcome = weighted(rng, v.SAFEGUARDING_OUTCOMES)
    ctx.sink.write(
        SAFEGUARDING,
        {
            "concern_id": ctx.ids.record_id("SGC"),
            "person_id": ctx.pid,
            "concern_date": day.isoformat(),
            "source": source,
            "category_code": code,
            "category": _SG_TEXT[code],
            "location_of_risk": weighted(rng, v.SAFEGUARDING_LOCATIONS),
            "status": status,
            "outcome": outcome,
            "outcome_date": closed.isoformat() if closed else None,
            "person_views_sought": rng.random() < 0.8,
            "updated_at": ctx.stamp(closed or day),
        },
    )
    _allocation(ctx, ctx.worker("T10"), day, closed)

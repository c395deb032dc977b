"""Community health record (CHS) output for one person: ADT messages and extract rows."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from bridge.synth import hl7
from bridge.synth import vocab as v
from bridge.synth.output import Sink
from bridge.synth.population import (
    Demographics,
    Identifiers,
    Person,
    Pools,
    Worker,
    local_time,
    make_address,
    weighted,
)
from bridge.synth.timefmt import iso, utc_minutes

REFERRALS = "chs/extracts/referrals.jsonl"
CONTACTS = "chs/extracts/contacts.jsonl"
PROBLEMS = "chs/extracts/problems.jsonl"
KEY_PROFESSIONALS = "chs/extracts/key_professionals.jsonl"
ALERTS = "chs/extracts/alerts.jsonl"

_TEAMS = {code: (name, role) for code, name, role in v.CHS_TEAMS}
_SOURCES = tuple((code, w) for code, _, w in v.CHS_REFERRAL_SOURCES)
_SOURCE_TEXT = {code: text for code, text, _ in v.CHS_REFERRAL_SOURCES}
_REASONS = {code: (text, teams) for code, text, teams in v.CHS_REFERRAL_REASONS}
_CONTACT_TYPES = tuple((code, w) for code, _, w in v.CHS_CONTACT_TYPES)
_CONTACT_TEXT = {code: text for code, text, _ in v.CHS_CONTACT_TYPES}
_ALERT_TEXT = dict(v.CHS_ALERTS)
# Referral reasons that suit each needs profile (besides any reason at a low rate).
_PROFILE_REASONS = {
    "older_physical": ("RR01", "RR02", "RR03", "RR04", "RR06", "RR07", "RR09", "RR10", "RR11"),
    "older_memory": ("RR13", "RR02", "RR07", "RR08", "RR05", "RR01"),
    "older_sensory": ("RR02", "RR11", "RR01"),
    "older_mental": ("RR08", "RR10", "RR01"),
    "adult_learning": ("RR12", "RR11", "RR04"),
    "adult_mental": ("RR08", "RR04"),
    "adult_physical": ("RR11", "RR06", "RR01", "RR04"),
    "adult_substance": ("RR01", "RR08"),
}
_PROFILE_PROBLEMS = {
    "older_physical": v.PROBLEMS_PHYSICAL,
    "older_memory": v.PROBLEMS_MEMORY + v.PROBLEMS_PHYSICAL,
    "older_sensory": v.PROBLEMS_PHYSICAL,
    "older_mental": v.PROBLEMS_MENTAL + v.PROBLEMS_PHYSICAL,
    "adult_learning": v.PROBLEMS_LEARNING,
    "adult_mental": v.PROBLEMS_MENTAL,
    "adult_physical": v.PROBLEMS_PHYSICAL,
    "adult_substance": v.PROBLEMS_SUBSTANCE,
}
_CATEGORY = {
    **{p[0]: "physical" for p in v.PROBLEMS_PHYSICAL},
    **{p[0]: "memory_and_cognition" for p in v.PROBLEMS_MEMORY},
    **{p[0]: "learning_disability" for p in v.PROBLEMS_LEARNING},
    **{p[0]: "mental_health" for p in v.PROBLEMS_MENTAL},
    **{p[0]: "substance_misuse" for p in v.PROBLEMS_SUBSTANCE},
    **{p[0]: "sexual_health" for p in v.PROBLEMS_SEXUAL_HEALTH},
    **{p[0]: "hiv" for p in v.PROBLEMS_HIV},
}


@dataclass(slots=True)
class ChsHistory:
    """What happened to the person in community health (social care output reacts to it)."""

    registered: date
    discharges: list[tuple[date, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Details:
    """A person's details as the health record held them before and after the last A31."""

    first: Demographics
    current: Demographics
    since: datetime

    def at(self, t: datetime) -> Demographics:
        """Return the details a message sent at ``t`` carries."""
        return self.current if t >= self.since else self.first


class _Clock:
    """The run's reference point: everything generated happens before ``as_of``."""

    def __init__(self, as_of: date) -> None:
        self.as_of = as_of
        self.end = datetime(as_of.year, as_of.month, as_of.day)

    def day(self, days_ago: int) -> date:
        return self.as_of - timedelta(days=days_ago)


def _after(t: datetime, rng: random.Random, min_minutes: int, max_minutes: int) -> datetime:
    """Return a daytime moment a random number of minutes (5-minute steps) after ``t``."""
    u = t + timedelta(minutes=5 * rng.randrange(min_minutes // 5, max_minutes // 5 + 1))
    # Keep out of the night so no time lands in the hour the clocks change.
    if u.hour >= 23:
        return datetime(u.year, u.month, u.day, 9) + timedelta(days=1)
    if u.hour < 6:
        return datetime(u.year, u.month, u.day, 9)
    return u


def _stamp(t: datetime, rng: random.Random, end: datetime) -> str:
    """Return ``updated_at`` a little after ``t`` (a record is saved after the event)."""
    return iso(min(_after(t, rng, 5, 240), end - timedelta(hours=1)))


def emit_chs(
    person: Person,
    demo: Demographics,
    rng: random.Random,
    ids: Identifiers,
    pools: Pools,
    sink: Sink,
    as_of: date,
) -> ChsHistory:
    """Write everything the community health record holds about one person."""
    clock = _Clock(as_of)
    mrn = ids.chs_patient_id()
    person.chs_patient_id = mrn
    reg_day = clock.day(rng.randint(20, 1095))
    reg_time = local_time(reg_day, rng)
    history = ChsHistory(registered=reg_day)

    details = _adt_registrations(person, demo, rng, ids, sink, clock, mrn, reg_time)
    visits = _adt_visits(person, details, rng, ids, pools, sink, clock, mrn, reg_time, history)
    staff = _referrals_and_contacts(person, rng, ids, pools, sink, clock, mrn, reg_day, visits)
    _problems(person, rng, ids, sink, clock, mrn, reg_day)
    _key_professionals(person, rng, ids, pools, sink, clock, mrn, reg_day, staff)
    _alerts(person, rng, ids, sink, clock, mrn, reg_day)
    return history


def _send(sink: Sink, at: datetime, segments: list[str], *, may_spoil: bool = False) -> None:
    sink.adt(utc_minutes(at), hl7.message(segments), may_spoil=may_spoil)


def _person_segments(
    person: Person,
    demo: Demographics,
    mrn: str,
    *,
    nhs: bool = True,
    status: str | None = None,
) -> list[str]:
    return [
        hl7.pid(
            person,
            demo,
            mrn,
            nhs_number=person.nhs_number if nhs else None,
            nhs_status=status or person.nhs_status,
        ),
        hl7.pd1(person.practice),
    ]


def _adt_registrations(
    person: Person,
    demo: Demographics,
    rng: random.Random,
    ids: Identifiers,
    sink: Sink,
    clock: _Clock,
    mrn: str,
    reg_time: datetime,
) -> _Details:
    """Send A28 (add person), A31 updates, and for some a duplicate registration and A40."""
    days_left = (clock.end - reg_time).days
    n_updates = 0
    if days_left > 3 and rng.random() < 0.25:
        n_updates = 1 if rng.random() < 0.7 else 2
    first = demo
    if n_updates:
        # The registration carried older details; the last A31 brings them up to date.
        change = rng.random()
        if change < 0.4:
            first = replace(demo, address=make_address(rng))
        elif change < 0.7:
            first = replace(demo, phone_mobile=None)
        else:
            first = replace(demo, preferred=None)
    nok = [hl7.nk1(person.carer, demo.address)] if person.carer and rng.random() < 0.8 else []
    segs = [hl7.msh(reg_time, "A28"), hl7.evn("A28", reg_time)]
    segs += _person_segments(person, first, mrn)
    _send(sink, reg_time, [*segs, *nok, hl7.pv1_not_applicable()])
    t = reg_time
    for _ in range(n_updates):
        day = (t + timedelta(days=rng.randint(1, max(1, (clock.end - t).days - 1)))).date()
        if day >= clock.as_of:
            break
        t = max(local_time(day, rng), t + timedelta(minutes=5))
        segs = [hl7.msh(t, "A31"), hl7.evn("A31", t)]
        segs += _person_segments(person, demo, mrn)
        _send(sink, t, [*segs, *nok, hl7.pv1_not_applicable()], may_spoil=True)
    details = _Details(first, demo, t)

    # A few people get a second record (registered in a hurry without the NHS number),
    # later merged into the real one with A40: spread evenly so small samples have one.
    if person.index % 40 == 7 and days_left > 10:
        dup = ids.chs_patient_id()
        t_dup = local_time((reg_time + timedelta(days=rng.randint(1, days_left // 2))).date(), rng)
        dup_demo = replace(demo, middle=None, preferred=None, phone_home=None)
        segs = [hl7.msh(t_dup, "A28"), hl7.evn("A28", t_dup)]
        segs += _person_segments(person, dup_demo, dup, nhs=False, status="03")
        _send(sink, t_dup, [*segs, hl7.pv1_not_applicable()])
        merge_day = t_dup.date() + timedelta(days=rng.randint(1, 9))
        t_merge = local_time(merge_day, rng) if merge_day < clock.as_of else None
        if t_merge is None:
            t_merge = t_dup + timedelta(minutes=30)
        segs = [hl7.msh(t_merge, "A40"), hl7.evn("A40", t_merge)]
        segs += _person_segments(person, details.at(t_merge), mrn)
        _send(sink, t_merge, [*segs, hl7.mrg(dup)])
        person.chs_merged_ids.append(dup)
    return details


def _adt_visits(
    person: Person,
    details: _Details,
    rng: random.Random,
    ids: Identifiers,
    pools: Pools,
    sink: Sink,
    clock: _Clock,
    mrn: str,
    reg_time: datetime,
    history: ChsHistory,
) -> list[hl7.Visit]:
    """Send A01 admissions, A02 transfers, A08 updates and A03 discharges."""
    older = person.age_group == "65+"
    if rng.random() >= (0.35 if older else 0.15):
        return []
    visits: list[hl7.Visit] = []
    n = 1 if rng.random() < 0.8 else 2
    not_before = reg_time + timedelta(days=1)
    for _ in range(n):
        span = (clock.end - not_before).days - 1
        if span < 1:
            break
        # One in ten admissions falls in the last month, so some are still open at as_of.
        offset = (
            rng.randint(max(0, span - 30), span) if rng.random() < 0.1 else rng.randint(0, span)
        )
        admit = local_time((not_before + timedelta(days=offset)).date(), rng)
        visit = _visit(rng, ids, pools, admit)
        visits.append(visit)
        _send_visit(person, details, rng, sink, clock, mrn, visit)
        if visit.discharge_time is None or visit.discharge_time >= clock.end:
            break
        if visit.patient_class == "I":
            history.discharges.append((visit.discharge_time.date(), visit.disposition))
        not_before = visit.discharge_time + timedelta(days=2)
    return visits


def _visit(rng: random.Random, ids: Identifiers, pools: Pools, admit: datetime) -> hl7.Visit:
    cls = weighted(rng, (("I", 0.8), ("E", 0.12), ("O", 0.08)))
    consultant = rng.choice(pools.consultants)
    number = ids.record_id("V")
    if cls == "I":
        ward, _ = rng.choice(v.COMMUNITY_WARDS)
        los = rng.randint(2, 35)
        discharge = local_time((admit + timedelta(days=los)).date(), rng, 10, 17)
        return hl7.Visit(
            visit_number=number,
            patient_class="I",
            ward=ward,
            room=f"BAY{rng.randint(1, 4)}",
            bed=f"BED{rng.randint(1, 6):02d}",
            admission_type=weighted(rng, (("R", 0.6), ("E", 0.4))),
            attending=consultant,
            admit_source=weighted(rng, v.ADMISSION_SOURCES),
            admit_time=admit,
            discharge_time=discharge,
            disposition=weighted(rng, v.DISCHARGE_DESTINATIONS),
            expected_discharge=(
                (admit + timedelta(days=rng.randint(7, 28))).date() if rng.random() < 0.7 else None
            ),
            diagnosis=rng.choice(v.ICD10_ADMISSION) if rng.random() < 0.6 else None,
        )
    loc = v.URGENT_CARE_LOCATION if cls == "E" else v.OUTPATIENT_LOCATION
    admit = admit.replace(hour=min(admit.hour, 18))
    return hl7.Visit(
        visit_number=number,
        patient_class=cls,
        ward=loc[0],
        room="",
        bed="",
        admission_type="E" if cls == "E" else "R",
        attending=consultant,
        admit_source="19",
        admit_time=admit,
        discharge_time=_after(admit, rng, 30, 240),
        disposition="19",
        diagnosis=rng.choice(v.ICD10_ADMISSION[:5]) if cls == "E" and rng.random() < 0.5 else None,
    )


def _send_visit(
    person: Person,
    details: _Details,
    rng: random.Random,
    sink: Sink,
    clock: _Clock,
    mrn: str,
    visit: hl7.Visit,
) -> None:
    """Send the messages of one stay: A01, maybe A02 and A08, and A03 once it ended."""

    def person_segs(t: datetime) -> list[str]:
        return _person_segments(person, details.at(t), mrn)

    demo = details.current
    nok = [hl7.nk1(person.carer, demo.address)] if person.carer else []
    a = visit.admit_time
    segs = [
        hl7.msh(a, "A01"),
        hl7.evn("A01", a),
        *person_segs(a),
        *nok,
        hl7.pv1(visit, discharged=False),
    ]
    if visit.expected_discharge:
        segs.append(hl7.pv2(visit.expected_discharge))
    if visit.diagnosis:
        segs.append(hl7.dg1(*visit.diagnosis, "A", a))
    _send(sink, a, segs)
    end = visit.discharge_time or clock.end
    stay_end = min(end, clock.end - timedelta(hours=2))
    stay_days = (stay_end - a).days
    # Transfers go to about one stay in eight, spread evenly so small samples have one.
    if visit.patient_class == "I" and stay_days >= 4 and int(visit.visit_number[1:]) % 8 == 2:
        t = local_time((a + timedelta(days=rng.randint(1, stay_days - 2))).date(), rng)
        prior = (visit.ward, visit.room, visit.bed)
        visit.ward = rng.choice([w for w, _ in v.COMMUNITY_WARDS if w != visit.ward])
        visit.room, visit.bed = f"BAY{rng.randint(1, 4)}", f"BED{rng.randint(1, 6):02d}"
        visit.prior_ward = prior
        segs = [
            hl7.msh(t, "A02"),
            hl7.evn("A02", t),
            *person_segs(t),
            hl7.pv1(visit, discharged=False),
        ]
        _send(sink, t, segs)
        a = t
    if visit.patient_class == "I" and stay_days >= 3 and rng.random() < 0.25:
        t = local_time((a + timedelta(days=rng.randint(1, max(1, stay_days - 1)))).date(), rng)
        t = max(t, a + timedelta(minutes=5))
        if t < stay_end:
            if visit.expected_discharge:
                # The usual reason for an A08 mid-stay: the expected discharge date moved.
                visit.expected_discharge += timedelta(days=rng.randint(2, 10))
            segs = [hl7.msh(t, "A08"), hl7.evn("A08", t), *person_segs(t), *nok]
            segs.append(hl7.pv1(visit, discharged=False))
            if visit.expected_discharge:
                segs.append(hl7.pv2(visit.expected_discharge))
            if visit.diagnosis:
                segs.append(hl7.dg1(*visit.diagnosis, "W", t))
            _send(sink, t, segs, may_spoil=True)
    if visit.discharge_time and visit.discharge_time < clock.end:
        d = visit.discharge_time
        segs = [
            hl7.msh(d, "A03"),
            hl7.evn("A03", d),
            *person_segs(d),
            hl7.pv1(visit, discharged=True),
        ]
        if visit.diagnosis:
            segs.append(hl7.dg1(*visit.diagnosis, "F", d))
        _send(sink, d, segs, may_spoil=True)
    else:
        visit.discharge_time = None


def _referrals_and_contacts(
    person: Person,
    rng: random.Random,
    ids: Identifiers,
    pools: Pools,
    sink: Sink,
    clock: _Clock,
    mrn: str,
    reg_day: date,
    visits: list[hl7.Visit],
) -> dict[str, Worker]:
    """Write referrals to community teams and the visits that followed; return lead staff."""
    planned: list[tuple[date, str, str]] = []
    for visit in visits:
        if visit.patient_class == "I" and visit.discharge_time:
            # Discharge from a community bed usually means a referral to a home team.
            planned.append((visit.discharge_time.date(), "ACUTE", "RR06"))
    n = weighted(rng, (("0", 0.15), ("1", 0.5), ("2", 0.25), ("3", 0.1)))
    span = (clock.as_of - reg_day).days - 1
    for _ in range(int(n)):
        day = reg_day + timedelta(days=rng.randint(0, max(0, span)))
        reasons = _PROFILE_REASONS[person.profile]
        reason = rng.choice(reasons) if rng.random() < 0.85 else rng.choice(tuple(_REASONS))
        planned.append((day, weighted(rng, _SOURCES), reason))
    planned.sort()
    lead: dict[str, Worker] = {}
    for day, source, reason in planned:
        if day >= clock.as_of:
            continue
        reason_text, teams = _REASONS[reason]
        team = rng.choice(teams)
        team_name, _ = _TEAMS[team]
        received = local_time(day, rng)
        age_days = (clock.as_of - day).days
        if age_days < 14:
            status = weighted(rng, (("waiting", 0.5), ("accepted", 0.5)))
        else:
            status = weighted(rng, (("completed", 0.7), ("accepted", 0.22), ("rejected", 0.08)))
        priority = (
            "two_hour" if reason == "RR14" else weighted(rng, (("routine", 0.75), ("urgent", 0.25)))
        )
        if status == "waiting":
            status_time = received
        elif status == "rejected":
            status_time = _after(received, rng, 60, 60 * 48)
        else:
            status_time = _after(received, rng, 30, 60 * 24)
        if status_time >= clock.end:
            status, status_time = "waiting", received
        ref_id = ids.record_id("REF")
        staff = rng.choice(pools.chs_staff[team])
        last = status_time
        visits_out: list[dict[str, Any]] = []
        if status in ("accepted", "completed"):
            horizon = min(age_days - 1, 90)
            for _ in range(rng.randint(1, 8) if horizon > 0 else 0):
                when = local_time(day + timedelta(days=rng.randint(1, horizon)), rng)
                visits_out.append(_contact(rng, mrn, ref_id, team, team_name, staff, when))
            visits_out.sort(key=lambda c: c["contact_time"])
            for c in visits_out:
                # Ids are issued in visit order, as the clinical system would issue them.
                c["contact_id"] = ids.record_id("CON")
            if visits_out:
                last = max(last, datetime.fromisoformat(visits_out[-1]["contact_time"][:19]))
        if status == "completed":
            status_time = _after(last, rng, 60, 60 * 72)
            if status_time >= clock.end:
                status, status_time = "accepted", last
        sink.write(
            REFERRALS,
            {
                "referral_id": ref_id,
                "patient_id": mrn,
                "nhs_number": person.nhs_number,
                "received_date": day.isoformat(),
                "source_code": source,
                "source_text": _SOURCE_TEXT[source],
                "reason_code": reason,
                "reason_text": reason_text,
                "team_code": team,
                "team_name": team_name,
                "priority": priority,
                "status": status,
                "status_date": status_time.date().isoformat(),
                "updated_at": _stamp(status_time, rng, clock.end),
            },
        )
        for c in visits_out:
            sink.write(CONTACTS, c)
        if status != "rejected":
            lead[team] = staff
    return lead


def _contact(
    rng: random.Random,
    mrn: str,
    ref_id: str,
    team: str,
    team_name: str,
    staff: Worker,
    when: datetime,
) -> dict[str, Any]:
    """Return a community contact row (its id is issued once the visits are in order)."""
    ctype = weighted(rng, _CONTACT_TYPES)
    outcome = weighted(rng, v.CHS_CONTACT_OUTCOMES) if ctype == "HV" else "attended"
    duration = 0 if outcome != "attended" else rng.choice((15, 20, 30, 30, 45, 60))
    return {
        "contact_id": "",
        "patient_id": mrn,
        "referral_id": ref_id,
        "contact_time": iso(when),
        "contact_type_code": ctype,
        "contact_type": _CONTACT_TEXT[ctype],
        "staff_id": staff.worker_id,
        "staff_role": staff.role,
        "team_code": team,
        "team_name": team_name,
        "duration_minutes": duration,
        "outcome": outcome,
        "updated_at": iso(when + timedelta(minutes=duration + 5 * rng.randint(1, 24))),
    }


def _problems(
    person: Person,
    rng: random.Random,
    ids: Identifiers,
    sink: Sink,
    clock: _Clock,
    mrn: str,
    reg_day: date,
) -> None:
    """Write the problem list, including the sensitive entries a mapping must label."""
    pool = _PROFILE_PROBLEMS[person.profile]
    chosen = list(rng.sample(pool, min(len(pool), rng.randint(1, 4))))
    if person.age_group == "65+" and rng.random() < 0.5:
        chosen.append(rng.choice(v.PROBLEMS_PHYSICAL))
    if rng.random() < 0.08:
        chosen.append(rng.choice(v.PROBLEMS_MENTAL))
    if rng.random() < 0.03:
        chosen.append(rng.choice(v.PROBLEMS_SUBSTANCE))
    if rng.random() < 0.01:
        chosen.append(v.PROBLEMS_SEXUAL_HEALTH[0])
    if rng.random() < 0.005:
        chosen.append(v.PROBLEMS_HIV[0])
    seen: set[str] = set()
    for code, text, snomed in chosen:
        if code in seen:
            continue
        seen.add(code)
        onset = reg_day - timedelta(days=rng.randint(-200, 3650))
        onset = max(min(onset, clock.as_of - timedelta(days=2)), person.truth.dob)
        recorded = max(onset, reg_day)
        status = "active" if rng.random() < 0.85 else "resolved"
        if code in ("P020", "P021", "P030", "P031", "P032", "P070"):
            status = "active"  # lifelong conditions are never resolved
        rec_time = local_time(recorded, rng)
        sink.write(
            PROBLEMS,
            {
                "problem_id": ids.record_id("PRB"),
                "patient_id": mrn,
                "local_code": code,
                "local_text": text,
                "snomed_code": snomed,
                "category": _CATEGORY[code],
                "onset_date": onset.isoformat(),
                "status": status,
                "recorded_date": recorded.isoformat(),
                "updated_at": _stamp(rec_time, rng, clock.end),
            },
        )


def _key_professionals(
    person: Person,
    rng: random.Random,
    ids: Identifiers,
    pools: Pools,
    sink: Sink,
    clock: _Clock,
    mrn: str,
    reg_day: date,
    staff: dict[str, Worker],
) -> None:
    """Write the GP and the community clinicians responsible for the person."""
    gp = person.practice
    rows: list[tuple[str, str, str | None, str, str, str]] = [
        ("gp", f"Dr {gp.gp_given} {gp.gp_family}", gp.gp_code, gp.ods_code, gp.name, gp.phone),
    ]
    dn = next((w for t, w in staff.items() if t.startswith("DN-")), None)
    if dn:
        rows.append(
            (
                "district_nurse",
                dn.name,
                dn.worker_id,
                v.TRUST_CODE,
                v.TRUST_NAME,
                f"{v.LANDLINE_PREFIX}{rng.randrange(1000):03d}",
            )
        )
    matron = staff.get("CM")
    if matron is None and person.age_group == "65+" and rng.random() < 0.15:
        matron = rng.choice(pools.chs_staff["CM"])
    if matron:
        rows.append(
            (
                "community_matron",
                matron.name,
                matron.worker_id,
                v.TRUST_CODE,
                v.TRUST_NAME,
                f"{v.MOBILE_PREFIX}{rng.randrange(1000):03d}",
            )
        )
    for role, name, prof_id, org_code, org_name, phone in rows:
        start = reg_day if role == "gp" else reg_day + timedelta(days=rng.randint(0, 30))
        start = min(start, clock.as_of - timedelta(days=1))
        sink.write(
            KEY_PROFESSIONALS,
            {
                "key_professional_id": ids.record_id("KPR"),
                "patient_id": mrn,
                "role": role,
                "name": name,
                "professional_id": prof_id,
                "org_code": org_code,
                "org_name": org_name,
                "phone": phone,
                "start_date": start.isoformat(),
                "updated_at": _stamp(local_time(start, rng), rng, clock.end),
            },
        )


def _alerts(
    person: Person,
    rng: random.Random,
    ids: Identifiers,
    sink: Sink,
    clock: _Clock,
    mrn: str,
    reg_day: date,
) -> None:
    """Write the alerts a visiting clinician must know: DNACPR, key safe, lone worker, falls."""
    older = person.age_group == "65+"
    wanted = []
    if older and rng.random() < 0.15:
        wanted.append("DNACPR")
    if older and rng.random() < 0.25:
        wanted.append("KEYSAFE")
    if rng.random() < (0.25 if person.profile == "adult_substance" else 0.04):
        wanted.append("LONEWKR")
    if older and rng.random() < (0.35 if person.profile == "older_physical" else 0.15):
        wanted.append("FALLS")
    span = (clock.as_of - reg_day).days - 1
    for code in wanted:
        start = reg_day + timedelta(days=rng.randint(0, max(0, span)))
        end = None
        if rng.random() < 0.15 and (clock.as_of - start).days > 10:
            end = start + timedelta(days=rng.randint(1, (clock.as_of - start).days - 1))
        changed = local_time(end or start, rng)
        sink.write(
            ALERTS,
            {
                "alert_id": ids.record_id("ALR"),
                "patient_id": mrn,
                "alert_code": code,
                "alert_text": _ALERT_TEXT[code],
                "status": "inactive" if end else "active",
                "start_date": start.isoformat(),
                "end_date": end.isoformat() if end else None,
                "updated_at": _stamp(changed, rng, clock.end),
            },
        )

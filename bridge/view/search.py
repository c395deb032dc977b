"""Find persons for a social care user: one search for the API and the pages.

An NHS number is looked up directly; name words and/or a date of birth are matched within
the caller's caseload (persons whose records name the caller or the caller's team). Only
persons the caller may know exist are returned (``AccessGate.screen``: a care relationship
or break-glass in effect), and each is read through the gate, so every hit is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from bridge.access.gate import AccessGate
from bridge.audit.service import AuditRecord
from bridge.auth.principal import Principal
from bridge.core import nhs_number
from bridge.core.errors import InvalidIdentifierError
from bridge.store.resources import ResourceRepository
from bridge.view.document import NHS_NUMBER, patient_summary

MAX_RESULTS = 20
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")


@dataclass(frozen=True)
class PersonHit:
    """One person found: what the gate released of their demographics."""

    id: str
    names: list[str]
    birth_date: str | None
    nhs_number: str | None


def as_date(text: str) -> date | None:
    """Return ``text`` as a date when it is one (YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY)."""
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _name_tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z']+", text.lower()) if t]


def _matches(patient: dict[str, Any], words: list[str], born: date | None) -> bool:
    summary = patient_summary(patient)
    if born is not None and summary.get("birth_date") != born.isoformat():
        return False
    names = set()
    for n in summary.get("names", []):
        names.update(_name_tokens(n))
    return all(any(name.startswith(w) for name in names) for w in words)


def caseload(session: Session, gate: AccessGate, principal: Principal) -> set[str]:
    """Return the Persons whose records name the caller or the caller's team as involved."""
    repo = ResourceRepository(session, crypto=gate.crypto, clock=gate.clock)
    found: set[str] = set()
    for system in gate.config.worker_systems:
        found |= repo.persons_involving(system, principal.user)
    if principal.team:
        for system in gate.config.team_systems:
            found |= repo.persons_involving(system, principal.team)
    return found


def find_persons(
    session: Session,
    gate: AccessGate,
    principal: Principal,
    q: str,
    *,
    audit: AuditRecord,
    limit: int = MAX_RESULTS,
) -> list[PersonHit]:
    """Return the persons matching ``q`` that the caller may know exist, each read audited.

    ``audit`` describes the request (who, action ``person.read``); the gate completes it
    per person. ``InvalidIdentifierError`` (field ``q``) for a ten-digit number whose NHS
    number check digit is wrong.
    """
    repo = ResourceRepository(session, crypto=gate.crypto, clock=gate.clock)
    compact = re.sub(r"[\s-]", "", q)
    words: list[str] = []
    born: date | None = None
    if compact.isdigit() and len(compact) == 10:
        problem = nhs_number.invalid_reason(compact)
        if problem:
            raise InvalidIdentifierError(f"q: {problem}", field="q")
        persons = {
            p.person_id
            for p in repo.find_by_identifier(NHS_NUMBER, compact, resource_type="Patient")
            if p.person_id
        }
    else:
        for part in q.split():
            when = as_date(part)
            if when is not None:
                born = when
            else:
                words += _name_tokens(part)
        persons = caseload(session, gate, principal)
    hits: list[PersonHit] = []
    at = gate.clock.now()
    for person_id in sorted(persons):
        records = repo.find_by_person(person_id)
        patients = [r for r in records if r.resource_type == "Patient" and r.content]
        if (words or born) and not any(_matches(p.content or {}, words, born) for p in patients):
            continue
        if not gate.screen(session, principal, person_id, at=at, records=records).permitted:
            # Not a person the caller may know exists: not listed, nothing read.
            continue
        access = gate.open(
            session,
            principal,
            person_id,
            audit=audit,
            types=("Patient",),
            records=records,
            at=at,
        )
        shown = [patient_summary(r.content) for r in access.released]
        hits.append(
            PersonHit(
                id=person_id,
                names=sorted({n for s in shown for n in s.get("names", [])}),
                birth_date=next((s["birth_date"] for s in shown if "birth_date" in s), None),
                nhs_number=next((s["nhs_number"] for s in shown if "nhs_number" in s), None),
            )
        )
        if len(hits) >= limit:
            break
    return hits

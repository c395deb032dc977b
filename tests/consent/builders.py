"""Typed builders for consent tests: FHIR Consent JSON, requests, persons and candidates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from consent import (
    AccessRequest,
    BreakGlass,
    Candidate,
    ConsentEngine,
    Decision,
    Label,
    Period,
    PersonContext,
    Policy,
    Relationship,
    RelationshipKind,
    load_policy,
    read_consents,
)

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOCAL = "https://carebridge.example.org/fhir/CodeSystem/security-label"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
TEAM = "https://carebridge.example.org/Id/team"
CARE_ROLE = "https://carebridge.example.org/fhir/CodeSystem/care-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
RECORDED_BY = "https://carebridge.example.org/fhir/StructureDefinition/recorded-by"

AT = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
COUNCIL = "L1234"
TRUST = "RXX"
PSY = Label(ACT_CODE, "PSY")
ETH = Label(ACT_CODE, "ETH")
SDV = Label(ACT_CODE, "SDV")
SEX = Label(ACT_CODE, "SEX")
HIV = Label(ACT_CODE, "HIV")
SAFEGUARDING = Label(LOCAL, "SAFEGUARDING")
GENDER = Label(LOCAL, "GENDER-RECOGNITION")

EXPLICIT = load_policy("explicit-consent")
IMPLIED = load_policy("direct-care-implied")


def actor(
    org: str | None = COUNCIL,
    *,
    team: str | None = None,
    roles: Sequence[str] = (),
    custodian: bool = False,
) -> dict[str, Any]:
    """Return a Consent.provision.actor naming an organisation (ODS) or a team."""
    codings = [{"system": PARTICIPATION, "code": "CST" if custodian else "IRCP"}]
    codings += [{"system": CARE_ROLE, "code": r} for r in roles]
    ident = {"system": TEAM, "value": team} if team else {"system": ODS, "value": org}
    return {"role": {"coding": codings}, "reference": {"identifier": ident}}


def provision(
    type_: str | None = "permit",
    *,
    start: str | None = None,
    end: str | None = None,
    actors: Sequence[dict[str, Any]] = (),
    purposes: Sequence[str] = (),
    actions: Sequence[str] = (),
    classes: Sequence[str] = (),
    labels: Iterable[Label] = (),
    data: Sequence[str] = (),
    children: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Return a Consent.provision (nested ones via ``children``)."""
    out: dict[str, Any] = {}
    if type_ is not None:
        out["type"] = type_
    if start or end:
        out["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    if actors:
        out["actor"] = list(actors)
    if actions:
        out["action"] = [{"coding": [{"system": CONSENT_ACTION, "code": a}]} for a in actions]
    if purposes:
        out["purpose"] = [{"system": ACT_REASON, "code": p} for p in purposes]
    if classes:
        out["class"] = [{"system": RESOURCE_TYPES, "code": c} for c in classes]
    labels = list(labels)
    if labels:
        out["securityLabel"] = [{"system": lb.system, "code": lb.code} for lb in labels]
    if data:
        out["data"] = [{"meaning": "instance", "reference": {"reference": r}} for r in data]
    if children:
        out["provision"] = list(children)
    return out


def consent(
    id_: str = "c1",
    root: dict[str, Any] | None = None,
    *,
    recorded: str | None = "2026-03-01",
    status: str = "active",
    scope: str = "patient-privacy",
    version: str | None = "1",
    recorded_by: str | None = "Sam Patel",
    policy_rule: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return a FHIR R4 Consent; the default permits sharing with the council for direct care."""
    if root is None:
        root = provision("permit", actors=[actor()], purposes=["TREAT"])
    data: dict[str, Any] = {
        "resourceType": "Consent",
        "id": id_,
        "status": status,
        "scope": {"coding": [{"system": SCOPE, "code": scope}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "provision": root,
    }
    if recorded is not None:
        data["dateTime"] = recorded
    if version is not None:
        data["meta"] = {"versionId": version}
    if recorded_by is not None:
        data["extension"] = [{"url": RECORDED_BY, "valueString": recorded_by}]
    if policy_rule is not None:
        data["policyRule"] = {"coding": [{"system": ACT_CODE, "code": policy_rule}]}
    data.update(extra)
    return data


def request(
    *,
    user: str = "W1",
    roles: Iterable[str] = ("social_worker",),
    org: str = COUNCIL,
    team: str | None = "T02",
    purpose: str = "TREAT",
    at: datetime = AT,
    break_glass: BreakGlass | None = None,
) -> AccessRequest:
    """Return an access request (a social worker in team T02, for direct care)."""
    return AccessRequest(user, frozenset(roles), org, team, purpose, at, break_glass)


def allocated(user: str = "W1", *, since: timedelta = timedelta(days=30)) -> Relationship:
    """Return an allocated-worker relationship in force at ``AT``."""
    return Relationship(RelationshipKind.ALLOCATED_WORKER, Period(AT - since), user=user)


def person(
    *consents: dict[str, Any],
    relationships: Sequence[Relationship] | None = None,
    restricted_demographics: bool = False,
    policy: Policy = EXPLICIT,
) -> PersonContext:
    """Return a person with these Consents, allocated to W1 unless told otherwise."""
    rels = (allocated(),) if relationships is None else tuple(relationships)
    return PersonContext(
        "p1",
        tuple(read_consents(consents, tz=policy.time_zone)),
        rels,
        restricted_demographics,
    )


def record(
    resource_type: str = "Encounter",
    *labels: Label,
    source: str = "chs",
    id_: str = "r1",
    category: str | None = None,
) -> Candidate:
    """Return a candidate resource (a community health Encounter by default)."""
    return Candidate(resource_type, id_, source, frozenset(labels), category)


def decide_one(
    candidate: Candidate,
    who: PersonContext | None = None,
    req: AccessRequest | None = None,
    policy: Policy = EXPLICIT,
) -> Decision:
    """Return the engine's decision for one candidate."""
    engine = ConsentEngine(policy)
    return engine.evaluate(req or request(), who or person(policy=policy)).decide(candidate)

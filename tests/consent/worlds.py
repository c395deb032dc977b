"""Generated worlds for the consent engine: users, roles, teams, relationships, consents.

A world is plain data (dicts, lists, datetimes), so the reference model can read it
without the engine's types. ``to_engine`` turns it into the engine's inputs, writing each
consent as FHIR R4 JSON (so the FHIR reader is in the loop too). The generator draws from
a ``Chooser``: a seeded ``random.Random`` for the 10,000-world comparison, or hypothesis
for the properties.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Protocol, TypeVar

import yaml

from consent import (
    AccessRequest,
    BreakGlass,
    Candidate,
    ConsentRecord,
    Label,
    Period,
    PersonContext,
    Policy,
    Relationship,
    RelationshipKind,
    UnreadableConsent,
    read_consents,
)

T = TypeVar("T")

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
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

AT0 = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
LABELS = (
    (ACT_CODE, "PSY"),
    (ACT_CODE, "MH"),
    (ACT_CODE, "ETH"),
    (ACT_CODE, "SDV"),
    (LOCAL, "SAFEGUARDING"),
    (ACT_CODE, "SEX"),
    (ACT_CODE, "HIV"),
    (LOCAL, "GENDER-RECOGNITION"),
    (CONFIDENTIALITY, "R"),
    (ACT_CODE, "TBOO"),
)
TYPES = (
    "Condition",
    "Observation",
    "Encounter",
    "Flag",
    "Patient",
    "RelatedPerson",
    "Person",
    "CarePlan",
)
ROLES = (
    "social_worker",
    "safeguarding_lead",
    "approved_mental_health_professional",
    "reablement_officer",
    "ig_officer",
)
RESTRICTED = ("mental_health", "substance_misuse", "domestic_abuse", "safeguarding")
KINDS = ("allocated_worker", "allocated_team", "open_referral", "open_episode")
HOURS = (-4000, -300, -25, -1, 0, 1, 30, 5000)


class Chooser(Protocol):
    """Where the generator's choices come from."""

    def choice(self, options: Sequence[T]) -> T: ...

    def integer(self, lo: int, hi: int) -> int: ...

    def chance(self, percent: int) -> bool: ...


class RandomChooser:
    """Choices from a seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def chance(self, percent: int) -> bool:
        return self.rng.randrange(100) < percent


class DrawChooser:
    """Choices from a hypothesis ``draw`` (so failures shrink)."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self.draw = draw
        self.st = st

    def choice(self, options: Sequence[T]) -> T:
        index: int = self.draw(self.st.integers(0, len(options) - 1))
        return options[index]

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(self.st.integers(lo, hi)))

    def chance(self, percent: int) -> bool:
        return bool(self.draw(self.st.integers(0, 99)) < percent)


def preset(name: str) -> dict[str, Any]:
    """Return a shipped preset as plain parsed YAML."""
    ref = resources.files("consent.policies") / "presets" / f"{name}.yaml"
    data = yaml.safe_load(ref.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


_PRESETS = {name: preset(name) for name in ("explicit-consent", "direct-care-implied")}


@dataclass
class World:
    """One generated situation: a policy, a request, a person and candidate records."""

    policy: dict[str, Any]
    request: dict[str, Any]
    relationships: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    restricted_demographics: bool
    candidates: list[dict[str, Any]]
    # How each consent is written as FHIR (the reader's choices, not the semantics).
    encodings: list[dict[str, Any]] = field(default_factory=list)


def _subset(ch: Chooser, options: Sequence[T], percent: int) -> list[T]:
    return [o for o in options if ch.chance(percent)]


def _hours(ch: Chooser, at: datetime) -> datetime:
    return at + timedelta(hours=ch.choice(HOURS))


def gen_policy(ch: Chooser) -> dict[str, Any]:
    """Return a policy: a preset with its roles, grants and break-glass limits varied."""
    data = copy.deepcopy(_PRESETS[ch.choice(("explicit-consent", "direct-care-implied"))])
    if ch.chance(10):
        data["default"] = "permit"
    if ch.chance(50):
        data["sources"]["gp"] = {
            "text": "GP",
            "consent_required": True,
            "organisation": "Y12345",
        }
    roles = data["roles"]
    known_sources = list(data["sources"])
    for role in roles.values():
        if ch.chance(30):
            role["sources"] = _subset(ch, known_sources, 60) or [known_sources[0]]
        if ch.chance(30):
            role["restricted_categories"] = _subset(ch, RESTRICTED, 30)
    bg = data["break_glass"]
    bg["roles"] = _subset(ch, list(roles), 60)
    bg["duration_minutes"] = ch.choice((60, 240, 480))
    bg["min_reason_length"] = ch.choice((5, 20))
    bg["excluded_categories"] = _subset(ch, RESTRICTED, 75)
    if ch.chance(30):
        data["categories"]["safeguarding"]["resource_categories"] = ["safeguarding-concern"]
    return data


def gen_provision(ch: Chooser, depth: int, at: datetime, *, root: bool = False) -> dict[str, Any]:
    """Return an abstract provision, with nested exceptions up to ``depth`` more levels."""
    prov: dict[str, Any] = {
        # People mostly agree; the exceptions they make are mostly exclusions.
        "type": ch.choice(("permit", "permit", "deny") if root else ("permit", "deny", "deny")),
        "start": None,
        "end": None,
        "actors": [],
        "purposes": [],
        "actions": [],
        "classes": [],
        "labels": [],
        "data": [],
        "children": [],
    }
    if ch.chance(20):
        prov["start"] = _hours(ch, at) if ch.chance(70) else None
        prov["end"] = _hours(ch, at) if ch.chance(70) else None
    if ch.chance(40):
        for _ in range(ch.integer(1, 2)):
            if ch.chance(70):
                actor: dict[str, Any] = {"kind": "recipient", "org": None, "team": None}
                if ch.chance(75):
                    actor["org"] = ch.choice(("L1", "L2"))
                else:
                    actor["team"] = ch.choice(("T1", "T2"))
                actor["roles"] = _subset(ch, ROLES[:3], 25) if ch.chance(30) else []
            else:
                actor = {
                    "kind": "custodian",
                    "org": ch.choice(("RXX", "Y12345")),
                    "team": None,
                    "roles": [],
                }
            prov["actors"].append(actor)
    if ch.chance(20):
        prov["purposes"] = _subset(ch, ("TREAT", "HRESCH"), 60) or ["TREAT"]
    if ch.chance(15):
        prov["actions"] = _subset(ch, ("access", "correct", "collect", "disclose"), 50) or [
            "correct"
        ]
    if ch.chance(25):
        prov["classes"] = _subset(ch, TYPES, 35) or ["Condition"]
    if ch.chance(35):
        prov["labels"] = _subset(ch, LABELS, 25) or [LABELS[0]]
    if ch.chance(5):
        prov["data"] = [f"{ch.choice(TYPES[:3])}/r{ch.integer(0, 3)}"]
    if depth > 0:
        for _ in range(ch.integer(0, 3) if ch.chance(50) else 0):
            prov["children"].append(gen_provision(ch, depth - 1, at))
    return prov


def gen_world(ch: Chooser) -> World:
    """Return one generated world."""
    policy = gen_policy(ch)
    at = AT0 + timedelta(hours=ch.integer(-48, 48))
    user = ch.choice(("W1", "W2"))
    team = ch.choice(("T1", "T1", "T2", "T2", "T2", None))
    roles = set(_subset(ch, ROLES, 30))
    if ch.chance(70):
        roles.add("social_worker")
    bg = None
    if ch.chance(30):
        bg = {
            "reason": ch.choice(
                ("", "urgent", "Found unconscious at home; need medication history")
                + ("x" * 40,) * 3
            ),
            "started_at": None
            if ch.chance(50)
            else at - timedelta(minutes=ch.choice((0, 59, 60, 239, 240, 241, 479, 480, -5))),
        }
    request = {
        "user": user,
        "roles": roles,
        "org": ch.choice(("L1", "L1", "L2")),
        "team": team,
        "purpose": "TREAT" if ch.chance(95) else "HRESCH",
        "at": at,
        "break_glass": bg,
    }
    relationships = []
    if ch.chance(80):
        # Most requests come from someone involved in the person's care.
        kind = ch.choice(KINDS)
        relationships.append(
            {
                "kind": kind,
                "user": user if kind == "allocated_worker" else None,
                "team": None if kind == "allocated_worker" else (team or "T1"),
                "start": at - timedelta(hours=ch.choice((0, 300))),
                "end": None if ch.chance(70) else at + timedelta(hours=ch.choice((0, 30))),
            }
        )
    for _ in range(ch.integer(0, 2)):
        kind = ch.choice(KINDS)
        relationships.append(
            {
                "kind": kind,
                "user": ch.choice(("W1", "W2")) if kind == "allocated_worker" else None,
                "team": None if kind == "allocated_worker" else ch.choice(("T1", "T2", "T3")),
                "start": _hours(ch, at) if ch.chance(80) else None,
                "end": _hours(ch, at) if ch.chance(50) else None,
            }
        )
    consents = []
    encodings = []
    for i in range(ch.integer(0, 4)):
        recorded = at + timedelta(hours=ch.choice((-2000, -500, -24, -24, 0, 1)))
        consents.append(
            {
                "id": f"c{ch.integer(0, 9)}{i}",
                "version": ch.choice(("1", "2", None)),
                "status": "active" if ch.chance(85) else ch.choice(("inactive", "draft")),
                "scope": "patient-privacy" if ch.chance(92) else "research",
                "recorded": recorded,
                "recorded_by": ch.choice(("Sam Patel", None)),
                "unreadable": ch.chance(5),
                "root": gen_provision(ch, 2, at, root=True),
            }
        )
        encodings.append(
            {
                "root_type_by_policy_rule": ch.chance(20),
                "defect": ch.choice(("literal-actor", "no-datetime", "purpose-system")),
            }
        )
    candidates = []
    for i in range(ch.integer(1, 12)):
        candidates.append(
            {
                "type": ch.choice(TYPES),
                "id": f"r{ch.integer(0, 5)}" if ch.chance(50) else f"x{i}",
                "source": ch.choice(("chs", "chs", "chs", "asc", "asc", "gp", "other")),
                "labels": _subset(ch, LABELS, 10),
                "category": ch.choice((None, None, "safeguarding-concern", "problem-list-item")),
            }
        )
    return World(
        policy=policy,
        request=request,
        relationships=relationships,
        consents=consents,
        restricted_demographics=ch.chance(20),
        candidates=candidates,
        encodings=encodings,
    )


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def provision_to_fhir(prov: dict[str, Any], *, root_type: bool = True) -> dict[str, Any]:
    """Return an abstract provision as FHIR R4 ``Consent.provision`` JSON."""
    out: dict[str, Any] = {}
    if root_type:
        out["type"] = prov["type"]
    if prov["start"] is not None or prov["end"] is not None:
        out["period"] = {}
        if prov["start"] is not None:
            out["period"]["start"] = _instant(prov["start"])
        if prov["end"] is not None:
            out["period"]["end"] = _instant(prov["end"])
    actors = []
    for actor in prov["actors"]:
        role: dict[str, Any] = {"coding": []}
        if actor["kind"] == "custodian":
            role["coding"].append({"system": PARTICIPATION, "code": "CST"})
        else:
            role["coding"].append({"system": PARTICIPATION, "code": "IRCP"})
            role["coding"] += [{"system": CARE_ROLE, "code": r} for r in actor["roles"]]
        if actor["org"] is not None:
            ident = {"system": ODS, "value": actor["org"]}
        else:
            ident = {"system": TEAM, "value": actor["team"]}
        actors.append({"role": role, "reference": {"identifier": ident}})
    if actors:
        out["actor"] = actors
    if prov["actions"]:
        out["action"] = [
            {"coding": [{"system": CONSENT_ACTION, "code": a}]} for a in prov["actions"]
        ]
    if prov["purposes"]:
        out["purpose"] = [{"system": ACT_REASON, "code": p} for p in prov["purposes"]]
    if prov["classes"]:
        out["class"] = [{"system": RESOURCE_TYPES, "code": c} for c in prov["classes"]]
    if prov["labels"]:
        out["securityLabel"] = [{"system": s, "code": c} for s, c in prov["labels"]]
    if prov["data"]:
        out["data"] = [{"meaning": "instance", "reference": {"reference": r}} for r in prov["data"]]
    if prov["children"]:
        out["provision"] = [provision_to_fhir(c) for c in prov["children"]]
    return out


def consent_to_fhir(consent: dict[str, Any], encoding: dict[str, Any]) -> dict[str, Any]:
    """Return an abstract consent as FHIR R4 Consent JSON (with its defect if unreadable)."""
    by_rule = encoding["root_type_by_policy_rule"]
    data: dict[str, Any] = {
        "resourceType": "Consent",
        "id": consent["id"],
        "status": consent["status"],
        "scope": {"coding": [{"system": SCOPE, "code": consent["scope"]}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "dateTime": _instant(consent["recorded"]),
        "provision": provision_to_fhir(consent["root"], root_type=not by_rule),
    }
    if consent["version"] is not None:
        data["meta"] = {"versionId": consent["version"]}
    if consent["recorded_by"] is not None:
        data["extension"] = [{"url": RECORDED_BY, "valueString": consent["recorded_by"]}]
    if by_rule:
        code = "OPTIN" if consent["root"]["type"] == "permit" else "OPTOUT"
        data["policyRule"] = {"coding": [{"system": ACT_CODE, "code": code}]}
    if consent["unreadable"]:
        defect = encoding["defect"]
        if defect == "literal-actor":
            data["provision"]["actor"] = [
                {"role": {"text": "recipient"}, "reference": {"reference": "Organization/x"}}
            ]
        elif defect == "no-datetime":
            del data["dateTime"]
        else:
            data["provision"]["purpose"] = [{"system": "urn:example:purpose", "code": "CARE"}]
    return data


def to_engine(
    world: World,
) -> tuple[Policy, AccessRequest, PersonContext, list[Candidate]]:
    """Return the world as the engine's inputs."""
    policy = Policy.from_mapping(world.policy, file="<generated>")
    req = world.request
    bg = req["break_glass"]
    request = AccessRequest(
        user=req["user"],
        roles=frozenset(req["roles"]),
        org=req["org"],
        team=req["team"],
        purpose=req["purpose"],
        at=req["at"],
        break_glass=None if bg is None else BreakGlass(bg["reason"], bg["started_at"]),
    )
    relationships = tuple(
        Relationship(
            RelationshipKind(r["kind"]),
            Period(r["start"], r["end"]),
            user=r["user"],
            team=r["team"],
        )
        for r in world.relationships
    )
    fhir = [consent_to_fhir(c, e) for c, e in zip(world.consents, world.encodings, strict=True)]
    consents: list[ConsentRecord | UnreadableConsent] = read_consents(fhir, tz=policy.time_zone)
    person = PersonContext("p1", tuple(consents), relationships, world.restricted_demographics)
    candidates = [
        Candidate(
            c["type"],
            c["id"],
            c["source"],
            frozenset(Label(s, code) for s, code in c["labels"]),
            c["category"],
        )
        for c in world.candidates
    ]
    return policy, request, person, candidates

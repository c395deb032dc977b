"""FHIR search, $everything and single reads over HTTP, filtered by the consent gate.

The world is ingested through the real adapters, mapping specs, identity linking and MLLP
handler (synthetic people, NHS numbers from the 999 test range):

- person A: Zoë O'Neill-Testperson, born 1937-02-12, NHS 9990000018; an adult social care
  record (ASC0000001) and a community health record (CHS0000001). Allocated to worker
  W90001 (team T09). Consent to share community health records, excluding mental health.
  Problems: P1 stroke (active, onset 2022-07-24), P2 fracture (resolved, onset 2019-05-01),
  P3 anxiety (mental health, active, onset 2024-03-01). Referrals R1 (completed, received
  2026-04-02) and R2 (accepted, received 2026-05-23).
- person B: Bob Baker, born 1950-06-01, NHS 9990000026; ASC and CHS records; allocated to
  W90001 too; no recorded consent. Problems: P4, P5 (physical, active).
- person C: Carol Baker, born 1937-02-12, NHS 9990000034; ASC and CHS records; allocated to
  another worker (W90002, team T08). Problem P6.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import Engine

from adapters.asc import AscAdapter
from adapters.chs import ChsAdapter
from bridge.auth.roles import Role
from bridge.core.clock import FixedClock
from bridge.core.ids import stable_id
from bridge.core.settings import Settings
from bridge.ingest.mllp import MllpIngest
from bridge.ingest.service import Ingestor, ingest_stream
from bridge.store.audit import AuditFilter, AuditRepository
from bridge.store.db import make_session_factory
from tests.fixtures.schema import assert_fhir_r4

Headers = Callable[..., dict[str, str]]
FHIR_JSON = "application/fhir+json"
NHS = "https://fhir.nhs.uk/Id/nhs-number"

ASC_PERSON = {
    "title": "Ms",
    "preferred_name": None,
    "gender": "Female",
    "address_line_1": "1 Test Street",
    "address_line_2": None,
    "town": "Leeds",
    "postcode": "LS1 1AA",
    "sensitive_address": False,
    "phone": None,
    "mobile": None,
    "preferred_language": "en",
    "interpreter_required": False,
    "ethnicity_code": "Z",
    "accessibility_needs": [],
    "gp_practice_code": "Y21886",
    "gp_practice_name": "Test Practice",
    "client_type": "Service User",
    "primary_support_reason": "Physical Support: Personal Care Support",
    "accommodation_status": "Owner occupier or shared ownership scheme",
    "has_unpaid_carer": False,
    "updated_at": "2026-02-18T17:30:00+00:00",
}
PERSONS = [
    ("ASC0000001", "CHS0000001", "9990000018", "Zoë", "Ann", "O'Neill-Testperson", "1937-02-12"),
    ("ASC0000002", "CHS0000002", "9990000026", "Bob", None, "Baker", "1950-06-01"),
    ("ASC0000003", "CHS0000003", "9990000034", "Carol", None, "Baker", "1937-02-12"),
]
ALLOCATIONS = [
    ("ALC0000001", "ASC0000001", "W90001", "T09"),
    ("ALC0000002", "ASC0000002", "W90001", "T09"),
    ("ALC0000003", "ASC0000003", "W90002", "T08"),
]
# Local code, text and SNOMED CT code of each kind of problem.
PROBLEM_CODES = {
    "stroke": ("P007", "Cerebrovascular accident", "230690007"),
    "fracture": ("P016", "Fracture of hip", "5913000"),
    "anxiety": ("P043", "Anxiety disorder", "197480006"),
    "af": ("P005", "Atrial fibrillation", "49436004"),
}
PROBLEMS = [
    ("P1", "CHS0000001", "stroke", "physical", "2022-07-24", "active"),
    ("P2", "CHS0000001", "fracture", "physical", "2019-05-01", "resolved"),
    ("P3", "CHS0000001", "anxiety", "mental_health", "2024-03-01", "active"),
    ("P4", "CHS0000002", "af", "physical", "2021-01-23", "active"),
    ("P5", "CHS0000002", "stroke", "physical", "2020-02-02", "active"),
    ("P6", "CHS0000003", "af", "physical", "2023-03-03", "active"),
]
REFERRALS = [
    ("R1", "CHS0000001", "9990000018", "2026-04-02", "completed"),
    ("R2", "CHS0000001", "9990000018", "2026-05-23", "accepted"),
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _adt(control: int, chs_id: str, nhs: str, given: str, family: str, born: str) -> bytes:
    segments = [
        "MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20260129081000+0000||ADT^A28^ADT_A05|"
        f"{control:010d}|P|2.4|||AL|NE|GBR|UNICODE UTF-8",
        "EVN|A28|20260129081000+0000",
        f"PID|1||{nhs}^^^NHS^NH~{chs_id}^^^RXX^MR||{family}^{given}^^^Ms||{born.replace('-', '')}"
        "|F|||1 Test Street^^Leeds^^LS1 1AA^^H||||en^English|S||||||Z^Not stated||||||||||01",
        "PV1|1|N",
    ]
    return "\r".join(segments).encode() + b"\r"


def _load(tmp: Path, settings: Settings, clock: FixedClock, engine: Engine) -> None:
    asc = tmp / "asc"
    _jsonl(
        asc / "persons.jsonl",
        [
            ASC_PERSON
            | {
                "person_id": asc_id,
                "nhs_number": nhs,
                "given_name": given,
                "middle_names": middle,
                "family_name": family,
                "date_of_birth": born,
            }
            for asc_id, _, nhs, given, middle, family, born in PERSONS
        ],
    )
    _jsonl(
        asc / "allocations.jsonl",
        [
            {
                "allocation_id": aid,
                "person_id": pid,
                "worker_id": worker,
                "worker_name": "Test Worker",
                "worker_role": "Social Worker",
                "team_id": team,
                "team_name": "Test Team",
                "start_date": "2025-12-25",
                "end_date": None,
                "updated_at": "2025-12-25T15:35:00+00:00",
            }
            for aid, pid, worker, team in ALLOCATIONS
        ],
    )
    _jsonl(
        asc / "consents.jsonl",
        [
            {
                "consent_id": "CNS0000001",
                "person_id": "ASC0000001",
                "decision": "agreed",
                "purpose": "direct_care",
                "scope": "community_health",
                "excluded_categories": ["mental_health"],
                "decision_date": "2026-01-08",
                "valid_until": "2027-01-08",
                "capacity": "has_capacity",
                "recorded_by_worker_id": "W90001",
                "recorded_by_name": "Test Worker",
                "supersedes_consent_id": None,
                "updated_at": "2026-01-08T11:20:00+00:00",
            }
        ],
    )
    problems = _jsonl(
        tmp / "chs" / "problems.jsonl",
        [
            {
                "problem_id": pid,
                "patient_id": chs,
                "local_code": PROBLEM_CODES[kind][0],
                "local_text": PROBLEM_CODES[kind][1],
                "snomed_code": PROBLEM_CODES[kind][2],
                "category": category,
                "onset_date": onset,
                "status": status,
                "recorded_date": "2026-01-29",
                "updated_at": "2026-01-29T12:15:00+00:00",
            }
            for pid, chs, kind, category, onset, status in PROBLEMS
        ],
    )
    referrals = _jsonl(
        tmp / "chs" / "referrals.jsonl",
        [
            {
                "referral_id": rid,
                "patient_id": chs,
                "nhs_number": nhs,
                "received_date": received,
                "source_code": "AMB",
                "source_text": "Ambulance service",
                "reason_code": "RR02",
                "reason_text": "Falls assessment",
                "team_code": "NT",
                "team_name": "Neighbourhood Therapy",
                "priority": "routine",
                "status": status,
                "status_date": received,
                "updated_at": f"{received}T12:00:00+00:00",
            }
            for rid, chs, nhs, received, status in REFERRALS
        ],
    )
    ingestor = Ingestor.from_settings(settings, clock)
    factory = make_session_factory(engine)
    summary = ingest_stream(
        factory, AscAdapter([asc]).read(), ingestor=ingestor, system="asc", channel="file"
    )
    assert summary.counts.get("dead_lettered", 0) == 0, summary.as_text()
    mllp = MllpIngest(factory=factory, ingestor=ingestor, clock=clock)
    chs_names = {"CHS0000001": "Zoe^Ann", "CHS0000002": "Bob", "CHS0000003": "Carol"}
    for n, (_, chs, nhs, _given, _middle, family, born) in enumerate(PERSONS, start=1):
        ack = mllp.process(_adt(n, chs, nhs, chs_names[chs], family, born))
        assert ack is not None
        assert b"MSA|CA" in ack, ack
    summary = ingest_stream(
        factory,
        ChsAdapter([problems, referrals]).read(),
        ingestor=ingestor,
        system="chs",
        channel="file",
    )
    assert summary.counts.get("dead_lettered", 0) == 0, summary.as_text()


def asc_patient(asc_id: str) -> str:
    return stable_id("asc", "person", asc_id)


def chs_patient(chs_id: str) -> str:
    return stable_id("chs", "patient", chs_id)


def problem(pid: str) -> str:
    return stable_id("chs", "problem", pid)


@pytest.fixture
def world(db: Engine, settings: Settings, clock: FixedClock, tmp_path: Path, client: Any) -> Any:
    """The three persons above, ingested; returns the client."""
    _load(tmp_path / "world", settings, clock, db)
    return client


@pytest.fixture
def hp(auth: Headers) -> dict[str, str]:
    return auth(Role.HEALTH_PROFESSIONAL, user="hp1", org="RXX")


@pytest.fixture
def sw(auth: Headers) -> dict[str, str]:
    """Social worker W90001 of team T09: allocated to persons A and B."""
    return auth(Role.SOCIAL_WORKER, user="W90001", team="T09", org="E08000999")


@pytest.fixture
def stranger(auth: Headers) -> dict[str, str]:
    """A social worker allocated to nobody here."""
    return auth(Role.SOCIAL_WORKER, user="W99999", team="T99", org="E08000999")


def bundle(response: Any, *, schema: bool = False) -> dict[str, Any]:
    """Assert a valid searchset Bundle (``schema``: also against HL7's JSON schema, slower)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    if schema:
        assert_fhir_r4(body)
    assert body["type"] == "searchset"
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


def outcome(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = [e["resource"] for e in body.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert len(found) <= 1
    return found[0]["issue"] if found else []


def withheld(body: dict[str, Any]) -> dict[str, int]:
    """Return withheld counts per reason code from the outcome entry."""
    out: dict[str, int] = {}
    for issue in outcome(body):
        if issue["code"] == "suppressed":
            out[issue["details"]["coding"][0]["code"]] = int(issue["diagnostics"].split()[0])
    return out


def assert_empty(body: dict[str, Any]) -> None:
    """Assert a Bundle that says nothing: no match, no outcome, total 0."""
    assert body["total"] == 0
    assert "entry" not in body


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    issue: dict[str, Any] = response.json()["issue"][0]
    return issue


def audit_entries(engine: Engine, user: str) -> list[Any]:
    with make_session_factory(engine)() as s:
        rows = AuditRepository(s).search(AuditFilter(actor_user=user, action="fhir.read"))
        return [(r.person_id, r.outcome, json.loads(r.detail)) for r in reversed(rows)]


A_ASC, A_CHS = asc_patient("ASC0000001"), chs_patient("CHS0000001")
B_ASC, B_CHS = asc_patient("ASC0000002"), chs_patient("CHS0000002")
C_ASC, C_CHS = asc_patient("ASC0000003"), chs_patient("CHS0000003")


PATIENT_CASES: list[tuple[str, set[str]]] = [
    (f"identifier={NHS}|9990000018", {A_ASC, A_CHS}),
    (f"identifier={NHS}|999 000 0026", {B_ASC, B_CHS}),
    ("name=zoe", {A_ASC, A_CHS}),  # "Zoë" in one record, "Zoe" in the other
    ("name=ZOË", {A_ASC, A_CHS}),
    ("family=o'neill-testperson", {A_ASC, A_CHS}),
    ("family=ONEILL", {A_ASC, A_CHS}),  # the apostrophe joins the word
    ("family=neill", set()),  # whole words only, never part of one
    ("family=baker", {B_ASC, B_CHS, C_ASC, C_CHS}),
    ("family=baker&given=carol", {C_ASC, C_CHS}),
    ("name=carol baker", {C_ASC, C_CHS}),  # every word must match
    ("name=carol,bob", {B_ASC, B_CHS, C_ASC, C_CHS}),  # commas: any of them
    ("given=bob&given=carol", set()),  # repeated: all of them
    ("birthdate=1937-02-12", {A_ASC, A_CHS, C_ASC, C_CHS}),
    ("birthdate=1937", {A_ASC, A_CHS, C_ASC, C_CHS}),
    ("birthdate=1950-06", {B_ASC, B_CHS}),
    ("family=baker&birthdate=1937-02-12", {C_ASC, C_CHS}),
    ("family=baker&birthdate=ge1940", {B_ASC, B_CHS}),
    ("family=baker&birthdate=lt1950-06-01", {C_ASC, C_CHS}),
    ("family=baker&birthdate=ne1950-06-01", {C_ASC, C_CHS}),
    (f"_id={A_ASC}", {A_ASC}),
    (f"_id={A_ASC},{C_CHS}&family=baker", {C_CHS}),
    ("family=baker&_lastUpdated=ge2026-11-23", {B_ASC, B_CHS, C_ASC, C_CHS}),
    ("family=baker&_lastUpdated=lt2026-11-23", set()),
]


class TestPatientSearchRaw:
    """Health professionals (fhir.read): what is stored, by every parameter."""

    def test_every_parameter(self, world: Any, hp: dict[str, str]) -> None:
        # One world for all the cases (ingesting it is the slow part).
        for query, expected in PATIENT_CASES:
            body = bundle(world.get(f"/fhir/Patient?{query}", headers=hp))
            assert set(ids(body)) == expected, query
            assert body["total"] == len(expected), query
            assert outcome(body) == [], query

    def test_results_are_the_stored_resources(self, world: Any, hp: dict[str, str]) -> None:
        body = bundle(world.get(f"/fhir/Patient?_id={A_ASC}", headers=hp))
        resource = body["entry"][0]["resource"]
        assert resource["name"][0]["family"] == "O'Neill-Testperson"
        assert resource["birthDate"] == "1937-02-12"
        assert body["entry"][0]["fullUrl"] == f"http://testserver/fhir/Patient/{A_ASC}"

    def test_search_is_audited_per_person_with_what_was_returned(
        self, world: Any, hp: dict[str, str], db: Engine
    ) -> None:
        bundle(world.get("/fhir/Patient?family=baker", headers=hp))
        entries = audit_entries(db, "hp1")
        assert len(entries) == 2  # persons B and C
        returned = sorted(ref for _, _, d in entries for ref in d["resources"])
        assert returned == sorted(f"Patient/{i}/1" for i in (B_ASC, B_CHS, C_ASC, C_CHS))
        assert all(d["parameters"] == ["family"] for _, _, d in entries)
        assert all("baker" not in json.dumps(d).lower() for _, _, d in entries)


BAD_PATIENT_QUERIES: list[tuple[str, str, str]] = [
    ("colour=blue&family=baker", "colour", "not a parameter carebridge supports for Patient"),
    ("name:exact=Baker", "name:exact", "modifier ':exact' is not supported"),
    ("_sort=family&family=baker", "_sort", "not a parameter carebridge supports for Patient"),
    ("family=", "family", "a value is required"),
    ("_count=abc&family=baker", "_count", "whole number"),
    ("_count=0&family=baker", "_count", "whole number"),
    ("_page=bm9wZQ&family=baker", "_page", "not a page token"),
    ("birthdate=12/02/1937", "birthdate", "is not a date"),
    ("birthdate=ge1940", "birthdate", "needs another parameter"),
    ("birthdate=sa1940&family=baker", "birthdate", "prefix 'sa' is not supported"),
    (f"identifier={NHS}|9990000019", "identifier", "NHS number"),
    ("identifier=9990000018", "identifier", "system|value"),
    ("_summary=true&family=baker", "_summary", "only 'count'"),
    ("_lastUpdated=ge2026", "Patient", "at least one of"),
]


class TestBadParameters:
    def test_patient_search_names_the_parameter(self, world: Any, hp: dict[str, str]) -> None:
        for query, field, words in BAD_PATIENT_QUERIES:
            issue = error(world.get(f"/fhir/Patient?{query}", headers=hp), 422)
            assert issue["expression"] == [field], query
            assert words in issue["diagnostics"], query
            assert issue["details"]["coding"][0]["code"] in ("BRIDGE-0100", "BRIDGE-0103")

    def test_clinical_search_needs_a_patient(self, world: Any, sw: dict[str, str]) -> None:
        issue = error(world.get("/fhir/Condition?status=active", headers=sw), 422)
        assert issue["expression"] == ["patient"]

    def test_unsearchable_type(self, world: Any, hp: dict[str, str]) -> None:
        issue = error(world.get("/fhir/Practitioner?name=x", headers=hp), 422)
        assert "Search is not supported for Practitioner" in issue["diagnostics"]

    def test_unknown_type(self, world: Any, hp: dict[str, str]) -> None:
        issue = error(world.get("/fhir/Spaceship?name=x", headers=hp), 404)
        assert issue["code"] == "not-supported"

    def test_lenient_handling_ignores_and_says_so(self, world: Any, hp: dict[str, str]) -> None:
        response = world.get(
            "/fhir/Patient?family=baker&colour=blue",
            headers=hp | {"Prefer": "handling=lenient"},
        )
        body = bundle(response)
        assert body["total"] == 4
        issues = outcome(body)
        assert [(i["severity"], i["expression"]) for i in issues] == [("warning", ["colour"])]
        assert "colour" not in body["link"][0]["url"]


CONDITION_CASES: list[tuple[str, set[str]]] = [
    (f"patient=Patient/{A_CHS}", {"P1", "P2", "P3"}),
    (f"subject={A_CHS}", {"P1", "P2", "P3"}),
    (f"patient={A_CHS}&status=active", {"P1", "P3"}),
    (f"patient={A_CHS}&status=resolved,inactive", {"P2"}),
    (f"patient={A_CHS}&date=ge2022", {"P1", "P3"}),
    (f"patient={A_CHS}&date=lt2020", {"P2"}),
    (f"patient={A_CHS}&date=2022-07", {"P1"}),
    (f"patient={A_CHS}&date=ge2020&date=le2023", {"P1"}),
    (f"patient={A_CHS}&date=2024-03-01T00:00:00Z", set()),  # a day is not in a second
    (f"patient={A_CHS}&_lastUpdated=le2026-11-23", {"P1", "P2", "P3"}),
    (f"patient={A_CHS},{B_CHS}&status=active", {"P1", "P3", "P4", "P5"}),
    (f"patient={A_ASC}", set()),  # the problems are on the health record
]


class TestClinicalSearchRaw:
    def test_condition_by_every_parameter(self, world: Any, hp: dict[str, str]) -> None:
        for query, expected in CONDITION_CASES:
            body = bundle(world.get(f"/fhir/Condition?{query}", headers=hp))
            assert set(ids(body)) == {problem(p) for p in expected}, query
            assert body["total"] == len(expected), query

    def test_service_request_by_date_and_status(self, world: Any, hp: dict[str, str]) -> None:
        r2 = stable_id("chs", "referral", "R2")
        body = bundle(world.get(f"/fhir/ServiceRequest?subject={A_CHS}&date=ge2026-05", headers=hp))
        assert ids(body) == [r2]
        body = bundle(
            world.get(f"/fhir/ServiceRequest?subject={A_CHS}&status=completed", headers=hp)
        )
        assert ids(body) == [stable_id("chs", "referral", "R1")]


class TestSocialWorker:
    def test_health_items_without_consent_are_withheld_and_summarised(
        self, world: Any, sw: dict[str, str]
    ) -> None:
        body = bundle(world.get(f"/fhir/Condition?patient={A_CHS}", headers=sw), schema=True)
        # P3 is mental health, which A's consent excludes: not listed, not counted.
        assert set(ids(body)) == {problem("P1"), problem("P2")}
        assert body["total"] == 2
        assert withheld(body) == {"excluded-by-consent": 1}
        issue = outcome(body)[0]
        assert issue["severity"] == "information"
        assert "Anxiety" not in json.dumps(body)
        assert (
            world.get(f"/fhir/Condition?patient={A_CHS}", headers=sw).headers["cache-control"]
            == "no-store"
        )

    def test_summary_does_not_depend_on_other_parameters(
        self, world: Any, sw: dict[str, str]
    ) -> None:
        # The withheld problem is active; asking for resolved ones summarises it all the same.
        body = bundle(world.get(f"/fhir/Condition?patient={A_CHS}&status=resolved", headers=sw))
        assert ids(body) == [problem("P2")]
        assert withheld(body) == {"excluded-by-consent": 1}

    def test_no_consent_withholds_every_health_record(self, world: Any, sw: dict[str, str]) -> None:
        # B's health record is withheld whole, so B's CHS patient is not visible either:
        # searching by it is an empty Bundle, as for a patient that does not exist.
        body = bundle(world.get(f"/fhir/Condition?patient={B_CHS}", headers=sw))
        assert_empty(body)
        body = bundle(world.get("/fhir/Patient?family=baker", headers=sw))
        assert ids(body) == [B_ASC]
        assert body["total"] == 1
        assert withheld(body) == {"no-consent": 1}

    def test_summary_count_is_the_filtered_count(self, world: Any, sw: dict[str, str]) -> None:
        body = bundle(world.get(f"/fhir/Condition?patient={A_CHS}&_summary=count", headers=sw))
        assert body["total"] == 2
        assert ids(body) == []
        raw = bundle(world.get(f"/fhir/Condition?patient={A_CHS}", headers=sw))
        assert body["total"] == len(ids(raw))

    def test_no_relationship_gets_an_empty_bundle(
        self, world: Any, stranger: dict[str, str], sw: dict[str, str]
    ) -> None:
        for query in (
            "family=baker",
            f"identifier={NHS}|9990000018",
            f"_id={A_ASC}",
            "birthdate=1937-02-12",
        ):
            body = bundle(world.get(f"/fhir/Patient?{query}", headers=stranger))
            assert_empty(body)
        # C is allocated to someone else: W90001 cannot find C either.
        body = bundle(world.get(f"/fhir/Patient?identifier={NHS}|9990000034", headers=sw))
        assert_empty(body)
        # The clinical search for an unrelated patient looks like one for no patient at all.
        unrelated = world.get(f"/fhir/Condition?patient={C_CHS}", headers=sw).json()
        missing = world.get("/fhir/Condition?patient=nobody", headers=sw).json()
        for body in (unrelated, missing):
            body["link"] = []
        assert unrelated == missing

    def test_patient_search_finds_only_related_persons(
        self, world: Any, sw: dict[str, str]
    ) -> None:
        body = bundle(world.get("/fhir/Patient?birthdate=1937-02-12", headers=sw))
        assert set(ids(body)) == {A_ASC, A_CHS}  # not C, born the same day

    def test_every_search_is_audited_with_the_decisions(
        self, world: Any, sw: dict[str, str], db: Engine
    ) -> None:
        bundle(world.get(f"/fhir/Condition?patient={A_CHS}&status=active", headers=sw))
        bundle(world.get(f"/fhir/Condition?patient={C_CHS}", headers=sw))
        entries = audit_entries(db, "W90001")
        assert len(entries) == 2
        (person_a, outcome_a, detail_a), (person_c, outcome_c, detail_c) = entries
        assert outcome_a == "partial"
        assert detail_a["interaction"] == "search-type"
        assert detail_a["parameters"] == ["patient", "status"]
        effects = {d["resource"].split("/")[1]: d["effect"] for d in detail_a["decisions"]}
        assert effects[problem("P3")] == "deny"
        assert effects[problem("P1")] == "permit"
        assert person_c != person_a
        assert outcome_c == "deny"  # the refusal is kept
        assert detail_c["screen"]["effect"] == "deny"


class TestPaging:
    @pytest.mark.parametrize("role", ["hp", "sw"])
    def test_walks_every_page_exactly_once(
        self, world: Any, role: str, request: pytest.FixtureRequest
    ) -> None:
        headers = request.getfixturevalue(role)
        url = f"/fhir/Condition?patient={A_CHS}&patient={A_CHS}&_count=1"
        seen: list[str] = []
        totals = set()
        pages = 0
        while url:
            body = bundle(world.get(url, headers=headers))
            totals.add(body["total"])
            seen += ids(body)
            pages += 1
            links = {link["relation"]: link["url"] for link in body["link"]}
            assert urlsplit(links["self"]).query.count("patient=") == 2
            nxt = links.get("next")
            url = f"{urlsplit(nxt).path}?{urlsplit(nxt).query}" if nxt else ""
        expected = 3 if role == "hp" else 2
        assert totals == {expected}
        assert pages == expected
        assert len(seen) == len(set(seen)) == expected

    def test_count_is_capped(self, world: Any, hp: dict[str, str]) -> None:
        body = bundle(world.get("/fhir/Patient?family=baker&_count=10000", headers=hp))
        assert "_count=500" in body["link"][0]["url"]


class TestRead:
    def test_social_worker_reads_what_the_gate_releases(
        self, world: Any, sw: dict[str, str]
    ) -> None:
        response = world.get(f"/fhir/Condition/{problem('P1')}", headers=sw)
        assert response.status_code == 200
        assert response.json()["id"] == problem("P1")
        assert response.headers["etag"] == 'W/"1"'

    @pytest.mark.parametrize(
        ("who", "target"),
        [
            ("sw", f"Condition/{problem('P3')}"),  # withheld (mental health excluded)
            ("sw", f"Condition/{problem('P4')}"),  # withheld (no consent)
            ("sw", f"Condition/{problem('P6')}"),  # no relationship
            ("stranger", f"Patient/{A_ASC}"),  # no relationship
        ],
    )
    def test_what_is_not_released_reads_as_not_found(
        self, world: Any, who: str, target: str, request: pytest.FixtureRequest
    ) -> None:
        headers = request.getfixturevalue(who)
        hidden = world.get(f"/fhir/{target}", headers=headers)
        rtype = target.split("/")[0]
        missing = world.get(f"/fhir/{rtype}/no-such-id", headers=headers)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.headers["content-type"] == missing.headers["content-type"]
        assert set(hidden.headers) - {"x-request-id", "content-length"} == set(missing.headers) - {
            "x-request-id",
            "content-length",
        }
        a, b = hidden.json(), missing.json()
        ident = target.split("/")[1]
        assert json.dumps(a).replace(ident, "X") == json.dumps(b).replace("no-such-id", "X")

    def test_refused_read_is_audited(self, world: Any, sw: dict[str, str], db: Engine) -> None:
        assert world.get(f"/fhir/Condition/{problem('P3')}", headers=sw).status_code == 404
        [(person, result, detail)] = audit_entries(db, "W90001")
        assert person is not None
        assert result == "partial"  # P1 and P2 would be shown, P3 is not
        assert detail["resource"] == f"Condition/{problem('P3')}"
        effects = {d["resource"].split("/")[1]: d["effect"] for d in detail["decisions"]}
        assert effects[problem("P3")] == "deny"

    def test_health_professional_keeps_raw_reads(self, world: Any, hp: dict[str, str]) -> None:
        response = world.get(f"/fhir/Condition/{problem('P3')}", headers=hp)
        assert response.status_code == 200


class TestEverything:
    def test_social_worker_gets_the_released_records_of_the_person(
        self, world: Any, sw: dict[str, str]
    ) -> None:
        body = bundle(world.get(f"/fhir/Patient/{A_CHS}/$everything", headers=sw), schema=True)
        found = ids(body)
        assert {A_ASC, A_CHS, problem("P1"), problem("P2")} <= set(found)
        assert problem("P3") not in found
        types = {e["resource"]["resourceType"] for e in body["entry"]}
        assert "Consent" not in types  # the engine's input, not a record of care
        assert body["total"] == len(found)
        assert withheld(body) == {"excluded-by-consent": 1}

    def test_raw_everything_holds_every_record(self, world: Any, hp: dict[str, str]) -> None:
        body = bundle(world.get(f"/fhir/Patient/{A_ASC}/$everything?_count=500", headers=hp))
        found = set(ids(body))
        assert {problem("P1"), problem("P2"), problem("P3")} <= found
        assert "Consent" in {e["resource"]["resourceType"] for e in body["entry"]}

    def test_unrelated_or_withheld_patient_is_not_found(
        self, world: Any, sw: dict[str, str]
    ) -> None:
        for pid in (C_ASC, B_CHS, "no-such-id"):
            issue = error(world.get(f"/fhir/Patient/{pid}/$everything", headers=sw), 404)
            assert issue["diagnostics"] == f"Patient/{pid} does not exist"

    def test_paging_and_unknown_parameters(self, world: Any, sw: dict[str, str]) -> None:
        first = bundle(world.get(f"/fhir/Patient/{A_CHS}/$everything?_count=2", headers=sw))
        assert len(ids(first)) == 2
        assert any(link["relation"] == "next" for link in first["link"])
        issue = error(world.get(f"/fhir/Patient/{A_CHS}/$everything?start=2020", headers=sw), 422)
        assert issue["expression"] == ["start"]


class TestCapabilityStatement:
    def test_lists_search_and_everything_only_where_implemented(
        self, client: Any, auth: Headers
    ) -> None:
        body = client.get("/fhir/metadata", headers=auth(Role.SOCIAL_WORKER)).json()
        by_type = {r["type"]: r for r in body["rest"][0]["resource"]}
        patient = by_type["Patient"]
        assert "search-type" in [i["code"] for i in patient["interaction"]]
        assert {p["name"] for p in patient["searchParam"]} == {
            "identifier",
            "name",
            "family",
            "given",
            "birthdate",
            "_id",
            "_lastUpdated",
        }
        assert patient["operation"][0]["name"] == "everything"
        condition = by_type["Condition"]
        assert {p["name"] for p in condition["searchParam"]} >= {"patient", "date", "status"}
        practitioner = by_type["Practitioner"]
        assert "search-type" not in [i["code"] for i in practitioner["interaction"]]
        assert "searchParam" not in practitioner

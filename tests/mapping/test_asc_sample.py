"""Every adult social care sample record maps to valid FHIR R4, or fails as the manifest says.

The records come through the ASC adapter exactly as ingest reads them; the resources go to
the consent engine exactly as the access gate will hand them over.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from adapters.asc import AscAdapter
from adapters.base import AdapterError, SourceRecord
from bridge.core.errors import MappingError
from bridge.core.ids import stable_id
from bridge.mapping import MappingResult, Mappings
from consent import (
    AccessRequest,
    Candidate,
    ConsentEngine,
    ConsentRecord,
    Label,
    Period,
    PersonContext,
    Relationship,
    RelationshipKind,
    load_policy,
    read_consents,
)
from tests.fixtures.schema import assert_fhir_r4
from tests.mapping.helpers import NOW, SAMPLE, record, schema_problems

ASC = SAMPLE / "asc"
MANIFEST = json.loads((SAMPLE / "manifest.json").read_text())
# The rows the generator spoils on purpose, by (file, line).
INVALID = {
    (row["file"], row["line"]): row
    for row in MANIFEST["invalid_rows"]
    if row["file"].startswith("asc/")
}
NEW_SPECS = (
    "asc/contact",
    "asc/service",
    "asc/allocation",
    "asc/carer",
    "asc/consent",
    "asc/safeguarding",
)
TEAM_SYSTEM = "https://carebridge.example.org/Id/team"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SAFEGUARDING = ("https://carebridge.example.org/fhir/CodeSystem/security-label", "SAFEGUARDING")
SDV = (V3, "SDV")


@dataclass(frozen=True)
class Outcome:
    """What became of one item the adapter read: its place, and resources or an error."""

    file: str  # "asc/contacts.jsonl"
    line: int
    item: SourceRecord | AdapterError
    result: MappingResult | None = None
    error: MappingError | None = None

    @property
    def resources(self) -> list[dict[str, Any]]:
        return [m.resource for m in self.result.resources] if self.result else []

    @property
    def fields(self) -> Mapping[str, Any]:
        return self.item.fields if isinstance(self.item, SourceRecord) else {}


def _place(origin: str) -> tuple[str, int]:
    name, line = origin.rsplit(":", 1)
    return f"asc/{name}", int(line)


@pytest.fixture(scope="module")
def outcomes(shipped: Mappings) -> list[Outcome]:
    """Map every item of the committed sample once."""
    found: list[Outcome] = []
    for item in AscAdapter([ASC]).read():
        file, line = _place(item.origin)
        if isinstance(item, AdapterError):
            found.append(Outcome(file, line, item))
            continue
        try:
            found.append(Outcome(file, line, item, result=shipped.map(item, now=NOW)))
        except MappingError as exc:
            found.append(Outcome(file, line, item, error=exc))
    return found


def _rows(name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Read an export file's rows directly (not through the adapter), skipping broken ones."""
    for n, text in enumerate((ASC / name).read_text(encoding="utf-8").splitlines(), 1):
        try:
            yield n, json.loads(text)
        except json.JSONDecodeError:
            continue


def _resources(outcomes: list[Outcome], resource_type: str, spec: str) -> list[dict[str, Any]]:
    return [
        r
        for o in outcomes
        for r in o.resources
        if r["resourceType"] == resource_type and r["meta"]["tag"][0]["code"] == spec
    ]


def _patient(person_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{stable_id('asc', 'person', person_id)}"}


class TestSample:
    def test_every_valid_record_maps_to_valid_fhir_r4(self, outcomes: list[Outcome]) -> None:
        checked = 0
        for o in outcomes:
            if (o.file, o.line) in INVALID:
                continue
            assert isinstance(o.item, SourceRecord), f"{o.file}:{o.line}: {o.item}"
            assert o.error is None, f"{o.file}:{o.line}: {o.error}"
            assert o.resources, f"{o.file}:{o.line} made nothing"
            for resource in o.resources:
                assert schema_problems(resource) == [], f"{o.file}:{o.line}"
                assert resource["meta"]["tag"][0]["code"] == f"asc/{o.item.kind}"
                checked += 1
        assert checked > 400

    def test_one_resource_of_each_kind_passes_the_whole_schema(
        self, outcomes: list[Outcome]
    ) -> None:
        # The per-type check above is HL7's schema narrowed to one definition (thirty times
        # faster); here the whole schema, as tests/fixtures/schema.py applies it.
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for o in outcomes:
            for r in o.resources:
                seen.setdefault((r["meta"]["tag"][0]["code"], r["resourceType"]), r)
        assert {spec for spec, _ in seen} >= set(NEW_SPECS)
        for resource in seen.values():
            assert_fhir_r4(resource)

    def test_every_spoiled_row_fails_or_is_kept_as_the_manifest_says(
        self, outcomes: list[Outcome]
    ) -> None:
        met = set()
        for o in outcomes:
            row = INVALID.get((o.file, o.line))
            if row is None:
                continue
            met.add((o.file, o.line))
            if row["kind"] == "truncated_json":
                assert isinstance(o.item, AdapterError)
            elif row["kind"] == "invalid_date":
                assert o.error is not None
                assert o.error.source_field == row["field"]
                assert o.error.code == "BRIDGE-0600"
            elif row["kind"] == "unknown_local_code":
                # The maps keep an unknown local code as text, with a warning naming it.
                assert o.result is not None
                (warning,) = o.result.warnings
                assert warning.field == row["field"]
                assert "kept as text" in warning.message
                assert o.fields[row["field"]] in json.dumps(o.resources)
            else:
                assert row["kind"] == "nhs_number_checksum"
                assert o.result is not None
                assert [w.field for w in o.result.warnings] == [row["field"]]
        assert met == set(INVALID)

    def test_resource_counts_match_the_rows(self, outcomes: list[Outcome]) -> None:
        failed = {
            (file, line)
            for (file, line), row in INVALID.items()
            if row["kind"] in ("invalid_date", "truncated_json")
        }

        def rows(name: str) -> list[dict[str, Any]]:
            return [r for n, r in _rows(name) if (f"asc/{name}", n) not in failed]

        contacts, services = rows("contacts.jsonl"), rows("services.jsonl")
        assessments, safeguarding = rows("assessments.jsonl"), rows("safeguarding.jsonl")
        expected = Counter(
            {
                ("asc/person", "Patient"): len(rows("persons.jsonl")),
                ("asc/assessment", "Encounter"): len(assessments),
                ("asc/assessment", "Observation"): sum(
                    len(r["eligible_outcomes"]) for r in assessments
                ),
                ("asc/contact", "ServiceRequest"): len(contacts),
                ("asc/contact", "Task"): sum(1 for r in contacts if r["triage_outcome_code"]),
                ("asc/service", "EpisodeOfCare"): len(services),
                ("asc/service", "CarePlan"): len(services),
                ("asc/allocation", "CareTeam"): len(rows("allocations.jsonl")),
                ("asc/carer", "RelatedPerson"): len(rows("carers.jsonl")),
                ("asc/consent", "Consent"): len(rows("consents.jsonl")),
                ("asc/safeguarding", "Flag"): len(safeguarding),
                ("asc/safeguarding", "Observation"): len(safeguarding),
            }
        )
        made = Counter(
            (r["meta"]["tag"][0]["code"], r["resourceType"]) for o in outcomes for r in o.resources
        )
        assert made == expected
        # The committed sample, as the manifest counts it: 66 contacts less one bad date,
        # 30 services less one cut-off line.
        assert made[("asc/contact", "ServiceRequest")] == 65
        assert made[("asc/service", "CarePlan")] == 29
        assert made[("asc/allocation", "CareTeam")] == 110

    def test_every_record_points_at_its_persons_patient(self, outcomes: list[Outcome]) -> None:
        patients = {r["id"] for o in outcomes if o.file == "asc/persons.jsonl" for r in o.resources}
        checked = 0
        for o in outcomes:
            if o.file == "asc/persons.jsonl" or o.result is None:
                continue
            assert isinstance(o.item, SourceRecord)
            for r in o.resources:
                ref = r.get("subject") or r.get("patient") or r.get("for")
                assert ref == _patient(o.fields["person_id"])
                assert ref["reference"].removeprefix("Patient/") in patients
                checked += 1
        assert checked > 300

    def test_references_within_a_record_resolve(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            if o.result is None:
                continue
            ids = {m.reference for m in o.result.resources}
            for r in o.resources:
                for ref in (r.get("focus"), *(r.get("supportingInfo") or [])):
                    if ref is not None:
                        assert ref["reference"] in ids


class TestContacts:
    def test_triaged_contacts_are_completed_with_a_task(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            if o.file != "asc/contacts.jsonl" or o.result is None:
                continue
            request, task = o.resources
            assert request["status"] == "completed"
            assert request["performer"][0]["identifier"] == {
                "system": TEAM_SYSTEM,
                "value": o.fields["team_id"],
            }
            assert task["focus"] == {"reference": f"ServiceRequest/{request['id']}"}
            assert task["businessStatus"]["text"]

    def test_an_untriaged_contact_is_an_open_referral_without_a_task(
        self, shipped: Mappings
    ) -> None:
        fields = {
            "contact_id": "ACT1",
            "person_id": "ASC1",
            "urgency": "urgent",
            "team_id": "T01",
            "team_name": "Front Door",
        }
        (request,) = shipped.map(record(fields, system="asc", kind="contact"), now=NOW).resources
        assert request.resource["status"] == "active"
        assert request.resource["priority"] == "urgent"

    def test_an_unknown_urgency_fails_naming_the_field(self, shipped: Mappings) -> None:
        fields = {"contact_id": "ACT1", "person_id": "ASC1", "urgency": "whenever"}
        with pytest.raises(MappingError) as caught:
            shipped.map(record(fields, system="asc", kind="contact"), now=NOW)
        assert caught.value.source_field == "urgency"


class TestServices:
    def test_status_follows_the_end_date(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            if o.file != "asc/services.jsonl" or o.result is None:
                continue
            episode, plan = o.resources
            ended = o.fields["end_date"] is not None
            assert episode["status"] == ("finished" if ended else "active")
            assert plan["status"] == ("completed" if ended else "active")
            assert plan["activity"][0]["detail"]["status"] == (
                "completed" if ended else "in-progress"
            )

    @pytest.mark.parametrize(
        ("end_date", "episode", "plan"),
        [(None, "active", "active"), ("2026-01-02", "finished", "completed")],
    )
    def test_without_a_status_the_end_date_decides(
        self, shipped: Mappings, end_date: str | None, episode: str, plan: str
    ) -> None:
        fields = {
            "service_id": "SRV1",
            "person_id": "ASC1",
            "service_code": "SV03",
            "start_date": "2025-06-01",
            "end_date": end_date,
        }
        made = shipped.map(record(fields, system="asc", kind="service"), now=NOW).resources
        assert [m.resource["status"] for m in made] == [episode, plan]

    def test_an_unknown_status_fails_naming_the_field(self, shipped: Mappings) -> None:
        fields = {"service_id": "SRV1", "person_id": "ASC1", "status": "paused"}
        with pytest.raises(MappingError) as caught:
            shipped.map(record(fields, system="asc", kind="service"), now=NOW)
        assert caught.value.source_field == "status"


def _relationships(care_teams: list[dict[str, Any]], worker_system: str) -> list[Relationship]:
    """Read care relationships from allocation CareTeams as the access gate will."""
    found = []
    for team in care_teams:
        period = team.get("period", {})
        when = Period.of_dates(
            date.fromisoformat(period["start"]),
            date.fromisoformat(period["end"]) if "end" in period else None,
            UTC,
        )
        for participant in team["participant"]:
            ident = participant["member"]["identifier"]
            if participant["member"]["type"] == "Practitioner":
                assert ident["system"] == worker_system
                found.append(
                    Relationship(RelationshipKind.ALLOCATED_WORKER, when, user=ident["value"])
                )
            else:
                assert ident["system"] == TEAM_SYSTEM
                found.append(
                    Relationship(RelationshipKind.ALLOCATED_TEAM, when, team=ident["value"])
                )
    return found


class TestAllocations:
    def test_worker_and_team_ids_are_where_the_gate_reads_them(
        self, outcomes: list[Outcome], shipped: Mappings
    ) -> None:
        worker_system = shipped.config["asc_worker_system"]
        for o in outcomes:
            if o.file != "asc/allocations.jsonl":
                continue
            fields = o.fields
            (team,) = o.resources
            assert team["status"] == ("inactive" if fields["end_date"] else "active")
            relationships = _relationships([team], worker_system)
            assert [(r.kind, r.user, r.team) for r in relationships] == [
                (RelationshipKind.ALLOCATED_WORKER, fields["worker_id"], None),
                (RelationshipKind.ALLOCATED_TEAM, None, fields["team_id"]),
            ]
            start = datetime.fromisoformat(fields["start_date"]).replace(tzinfo=UTC)
            assert all(r.period.start == start for r in relationships)
            assert all(
                (r.period.end is None) == (fields["end_date"] is None) for r in relationships
            )


def _engine_inputs(
    outcomes: list[Outcome], person_id: str
) -> tuple[list[ConsentRecord], list[dict[str, Any]]]:
    patient = _patient(person_id)
    consents = [
        r for r in _resources(outcomes, "Consent", "asc/consent") if r["patient"] == patient
    ]
    teams = [
        r for r in _resources(outcomes, "CareTeam", "asc/allocation") if r["subject"] == patient
    ]
    records = [c for c in read_consents(consents) if isinstance(c, ConsentRecord)]
    assert len(records) == len(consents), "every Consent is readable"
    return records, teams


class TestConsents:
    def test_every_consent_is_readable_by_the_engine(
        self, outcomes: list[Outcome], shipped: Mappings
    ) -> None:
        rows = {r["consent_id"]: r for _, r in _rows("consents.jsonl")}
        resources = _resources(outcomes, "Consent", "asc/consent")
        assert len(resources) == len(rows)
        records = read_consents(resources)
        labels = {"mental_health": "PSY", "substance_misuse": "ETH", "sexual_health": "SEX"}
        council = shipped.config["asc_organisation_code"]
        trust = shipped.config["chs_organisation_code"]
        for resource, consent in zip(resources, records, strict=True):
            assert isinstance(consent, ConsentRecord), consent
            assert consent.in_use
            row = rows[resource["identifier"][0]["value"]]
            root = consent.provision
            assert root is not None
            assert root.type.value == ("permit" if row["decision"] == "agreed" else "deny")
            assert root.purposes == {"TREAT"}
            assert consent.patient == _patient(row["person_id"])["reference"]
            assert consent.recorded_by == row["recorded_by_name"]
            actors = {(a.kind.value, a.organisation) for a in root.actors}
            expected = {("recipient", council)}
            if row["scope"] == "community_health":
                expected.add(("custodian", trust))
            assert actors == expected
            assert [c.labels for c in root.provisions] == [
                {Label(V3, labels[category])} for category in row["excluded_categories"]
            ]
            assert all(c.type.value == "deny" for c in root.provisions)
            assert root.period is not None
            assert (root.period.end is None) == (row["valid_until"] is None)

    def test_an_exclusion_withholds_its_category_only(
        self, outcomes: list[Outcome], shipped: Mappings
    ) -> None:
        # ASC9303820 agreed on 2026-01-08 (community health only, mental health excluded);
        # W81442 of team T02 has been allocated since 2025-12-25.
        consents, teams = _engine_inputs(outcomes, "ASC9303820")
        engine = ConsentEngine(load_policy("explicit-consent"))
        person = PersonContext(
            "ASC9303820",
            consents=tuple(consents),
            relationships=tuple(_relationships(teams, shipped.config["asc_worker_system"])),
        )
        request = AccessRequest(
            user="W81442",
            roles=frozenset({"social_worker"}),
            org="E08000999",
            team="T02",
            purpose="TREAT",
            at=datetime(2026, 6, 1, 9, 30, tzinfo=UTC),
        )
        access = engine.evaluate(request, person)
        access.require()
        shown, withheld = access.decide_all(
            [
                Candidate("Encounter", "e1", "chs"),
                Candidate("Condition", "c1", "chs", frozenset({Label(V3, "PSY")})),
            ]
        )
        assert (shown.effect.value, shown.reasons[0].code) == ("permit", "consent-permits")
        assert (withheld.effect.value, withheld.reasons[0].code) == (
            "deny",
            "excluded-by-consent",
        )

    def test_a_withdrawal_overrides_the_agreement_it_replaces(
        self, outcomes: list[Outcome]
    ) -> None:
        (withdrawal,) = [r for _, r in _rows("consents.jsonl") if r["decision"] == "withdrawn"]
        person_id = withdrawal["person_id"]
        consents, _ = _engine_inputs(outcomes, person_id)
        assert len(consents) == 2
        engine = ConsentEngine(load_policy("explicit-consent"))
        # Their allocations ended before they agreed; a team relationship stands in.
        person = PersonContext(
            person_id,
            consents=tuple(consents),
            relationships=(
                Relationship(
                    RelationshipKind.ALLOCATED_TEAM,
                    Period(datetime(2026, 9, 1, tzinfo=UTC)),
                    team="T02",
                ),
            ),
        )

        def decide(at: datetime) -> tuple[str, str]:
            request = AccessRequest(
                user="W1",
                roles={"social_worker"},
                org="E08000999",
                team="T02",
                purpose="TREAT",
                at=at,
            )
            (d,) = engine.evaluate(request, person).decide_all(
                [Candidate("Encounter", "e1", "chs")]
            )
            return d.effect.value, d.reasons[0].code

        withdrawn = datetime.fromisoformat(withdrawal["decision_date"]).replace(tzinfo=UTC)
        assert decide(withdrawn - timedelta(days=2)) == ("permit", "consent-permits")
        assert decide(withdrawn + timedelta(days=1)) == ("deny", "consent-refused")

    def test_an_unknown_excluded_category_fails_naming_the_field(self, shipped: Mappings) -> None:
        fields = {
            "consent_id": "CNS1",
            "person_id": "ASC1",
            "decision": "agreed",
            "purpose": "direct_care",
            "scope": "health_partners",
            "excluded_categories": ["mental_health", "gambling"],
            "decision_date": "2026-01-01",
        }
        with pytest.raises(MappingError) as caught:
            shipped.map(record(fields, system="asc", kind="consent"), now=NOW)
        assert caught.value.source_field == "excluded_categories[1]"


class TestSafeguarding:
    def test_every_resource_is_labelled_safeguarding(self, outcomes: list[Outcome]) -> None:
        resources = [r for o in outcomes if o.file == "asc/safeguarding.jsonl" for r in o.resources]
        assert len(resources) == 8
        for r in resources:
            assert (r["meta"]["security"][0]["system"], r["meta"]["security"][0]["code"]) == (
                SAFEGUARDING
            )

    @pytest.mark.parametrize("code", [f"SG{n:02d}" for n in range(1, 11)])
    def test_domestic_and_sexual_abuse_are_also_sdv(self, shipped: Mappings, code: str) -> None:
        fields = {
            "concern_id": "SGC1",
            "person_id": "ASC1",
            "concern_date": "2026-10-01",
            "category_code": code,
            "status": "concern_received",
        }
        made = shipped.map(record(fields, system="asc", kind="safeguarding"), now=NOW).resources
        expected = [SAFEGUARDING, SDV] if code in ("SG06", "SG08") else [SAFEGUARDING]
        for m in made:
            assert [(c["system"], c["code"]) for c in m.resource["meta"]["security"]] == expected
            assert schema_problems(m.resource) == []
        assert [m.resource["resourceType"] for m in made] == ["Flag", "Observation"]
        assert made[0].resource["status"] == "active"

    def test_an_unknown_category_fails_rather_than_go_unlabelled(self, shipped: Mappings) -> None:
        fields = {
            "concern_id": "SGC1",
            "person_id": "ASC1",
            "category_code": "SG99",
            "status": "closed",
        }
        with pytest.raises(MappingError) as caught:
            shipped.map(record(fields, system="asc", kind="safeguarding"), now=NOW)
        assert caught.value.source_field == "category_code"
        assert "sensitivity is unknown" in caught.value.detail

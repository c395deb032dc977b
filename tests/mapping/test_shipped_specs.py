"""The shipped specs on the committed synthetic sample: valid FHIR, the right links."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from bridge.core.errors import MappingError
from bridge.core.ids import stable_id
from bridge.mapping import Mappings
from tests.mapping.helpers import NOW, SAMPLE, record, sample_records, schema_problems

SOURCES = {
    "asc/person": ("asc/persons.jsonl", "person_id"),
    "asc/assessment": ("asc/assessments.jsonl", "assessment_id"),
    "chs/problem": ("chs/extracts/problems.jsonl", "problem_id"),
}
# Rows the sample spoils on purpose (manifest.json) that make a record fail to map.
MANIFEST = json.loads((SAMPLE / "manifest.json").read_text())


def expected_failures(rel: str) -> set[int]:
    return {
        row["line"]
        for row in MANIFEST["invalid_rows"]
        if row["file"] == rel and row["kind"] in ("invalid_date", "truncated_json")
    }


class TestSample:
    @pytest.mark.parametrize("spec", sorted(SOURCES))
    def test_every_valid_row_maps_to_valid_fhir(self, shipped: Mappings, spec: str) -> None:
        rel, id_field = SOURCES[spec]
        system, kind = spec.split("/")
        failed: set[int] = set()
        errors: list[MappingError] = []
        made = 0
        for line, rec in sample_records(rel, system, kind, id_field):
            if rec is None:
                failed.add(line)
                continue
            try:
                result = shipped.map(rec, now=NOW)
            except MappingError as exc:
                errors.append(exc)
                failed.add(line)
                continue
            for mapped in result.resources:
                assert schema_problems(mapped.resource) == []
                assert mapped.resource["meta"]["tag"][0]["code"] == spec
                made += 1
        assert failed == expected_failures(rel)
        assert all(e.source_field for e in errors)
        assert made > 20

    def test_the_invalid_date_row_fails_naming_the_rule(self, shipped: Mappings) -> None:
        (row,) = [r for r in MANIFEST["invalid_rows"] if r["file"] == "chs/extracts/problems.jsonl"]
        records = dict(
            sample_records("chs/extracts/problems.jsonl", "chs", "problem", "problem_id")
        )
        with pytest.raises(MappingError) as caught:
            shipped.map(records[row["line"]], now=NOW)
        assert (caught.value.rule, caught.value.source_field) == ("onset", row["field"])

    def test_the_bad_nhs_number_is_kept_and_flagged(self, shipped: Mappings) -> None:
        (row,) = [r for r in MANIFEST["invalid_rows"] if r["kind"] == "nhs_number_checksum"]
        records = dict(sample_records("asc/persons.jsonl", "asc", "person", "person_id"))
        result = shipped.map(records[row["line"]], now=NOW)
        identifiers = result.resources[0].resource["identifier"]
        assert identifiers[1]["system"].endswith("/Id/invalid-nhs-number")
        assert [w.rule for w in result.warnings] == ["nhs-number"]

    def test_the_unknown_assessment_type_is_kept_as_text(self, shipped: Mappings) -> None:
        (row,) = [r for r in MANIFEST["invalid_rows"] if r["file"] == "asc/assessments.jsonl"]
        records = dict(
            sample_records("asc/assessments.jsonl", "asc", "assessment", "assessment_id")
        )
        result = shipped.map(records[row["line"]], now=NOW)
        encounter = result.resources[0].resource
        assert encounter["type"][0]["coding"] == [
            {
                "system": "https://fhir.aire-valley.example.gov.uk/CodeSystem/asc-assessment-type",
                "code": "ZZ57",
                "display": encounter["type"][0]["text"],
            }
        ]
        assert "kept as text" in result.warnings[0].message


class TestLinksBetweenSpecs:
    def test_assessment_subject_is_the_patient_the_person_spec_makes(
        self, shipped: Mappings
    ) -> None:
        persons = {
            rec.fields["person_id"]: shipped.map(rec, now=NOW).resources[0]
            for _, rec in sample_records("asc/persons.jsonl", "asc", "person", "person_id")
            if rec is not None
        }
        checked = 0
        for _, rec in sample_records("asc/assessments.jsonl", "asc", "assessment", "assessment_id"):
            patient = persons.get(rec.fields["person_id"])
            if patient is None:
                continue
            for mapped in shipped.map(rec, now=NOW).resources:
                assert mapped.resource["subject"] == {"reference": patient.reference}
                checked += 1
        assert checked > 10

    def test_one_observation_per_eligible_outcome_linked_to_the_encounter(
        self, shipped: Mappings
    ) -> None:
        for _, rec in sample_records("asc/assessments.jsonl", "asc", "assessment", "assessment_id"):
            encounter, *needs = shipped.map(rec, now=NOW).resources
            assert encounter.key == ("asc", "assessment", rec.fields["assessment_id"])
            assert len(needs) == len(rec.fields["eligible_outcomes"])
            for need, outcome in zip(needs, rec.fields["eligible_outcomes"], strict=True):
                assert need.key == ("asc", "assessment-outcome", f"{rec.id}:{outcome}")
                assert need.id == stable_id(*need.key)
                assert need.resource["encounter"] == {"reference": encounter.reference}

    def test_problem_subject_is_the_chs_patient_of_the_mrn(self, shipped: Mappings) -> None:
        fields: dict[str, Any] = {
            "problem_id": "PRB1",
            "patient_id": "CHS0000001",
            "local_code": "P001",
            "local_text": "Type 2 diabetes mellitus",
            "category": "physical",
            "status": "active",
        }
        (condition,) = shipped.map(record(fields, system="chs", kind="problem"), now=NOW).resources
        assert condition.resource["subject"] == {
            "reference": f"Patient/{stable_id('chs', 'patient', 'CHS0000001')}"
        }


class TestRestrictedData:
    PERSON: ClassVar[dict[str, Any]] = {
        "person_id": "ASC0000009",
        "given_name": "A",
        "family_name": "B",
        "address_line_1": "1 Secret Street",
        "postcode": "LS1 1AA",
    }

    @pytest.mark.parametrize("flag", [True, None, "false", "no"])
    def test_address_withheld_unless_flag_is_false(self, shipped: Mappings, flag: Any) -> None:
        fields = {**self.PERSON, "sensitive_address": flag}
        (patient,) = shipped.map(record(fields, system="asc", kind="person"), now=NOW).resources
        assert "address" not in patient.resource
        assert "Secret" not in json.dumps(patient.resource)

    def test_address_written_when_not_sensitive(self, shipped: Mappings) -> None:
        fields = {**self.PERSON, "sensitive_address": False}
        (patient,) = shipped.map(record(fields, system="asc", kind="person"), now=NOW).resources
        assert patient.resource["address"][0]["line"] == ["1 Secret Street"]

    @pytest.mark.parametrize(
        ("category", "labels"),
        [
            ("mental_health", ["PSY"]),
            ("substance_misuse", ["ETH"]),
            ("sexual_health", ["SEX", "STD"]),
            ("hiv", ["HIV"]),
            ("physical", []),
            ("learning_disability", []),
            ("memory_and_cognition", []),
        ],
    )
    def test_problem_labels_by_category(
        self, shipped: Mappings, category: str, labels: list[str]
    ) -> None:
        fields = {
            "problem_id": "PRB1",
            "patient_id": "CHS1",
            "local_code": "P1",
            "category": category,
            "status": "active",
        }
        (condition,) = shipped.map(record(fields, system="chs", kind="problem"), now=NOW).resources
        found = [c["code"] for c in condition.resource["meta"].get("security", [])]
        assert found == labels
